//! The remote log's frames: `[u32 BE length][MessagePack map]`, a session header first on
//! every connection, then one record per frame. Maps with named keys (TaskTonic's keys where
//! it has them), so that any MessagePack reader — Python's `msgpack.unpackb` — reads them
//! without our types; unknown keys are ignored and missing ones take their defaults, so either
//! side may add keys.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The version in every session header: 1 is MessagePack (TaskTonic's `ttIpLogService`
/// sends 0, pickle).
pub const LOGGER_VERSION: u32 = 1;

/// The first frame on every connection of a remote log (TaskTonic's
/// `{'start_new_session': True, 'project': …, 'start@': …, 'target': …, 'logger_version': 0}`,
/// plus the process id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct SessionHeader {
    /// Always true: tells a viewer that a session (re)starts on this connection.
    pub start_new_session: bool,
    /// The sending application's project name.
    pub project: String,
    /// When the sending process started logging, in seconds since the Unix epoch.
    #[serde(rename = "start@")]
    pub start: f64,
    /// Where the records go, as the sender was told (`host:port`).
    pub target: String,
    /// [`LOGGER_VERSION`].
    pub logger_version: u32,
    /// The sending process's id.
    pub pid: u32,
}

impl Default for SessionHeader {
    fn default() -> Self {
        SessionHeader {
            start_new_session: true,
            project: String::new(),
            start: 0.0,
            target: String::new(),
            logger_version: LOGGER_VERSION,
            pid: 0,
        }
    }
}

impl SessionHeader {
    /// A header for `project` sending to `target`, started now, from this process.
    pub fn new(project: impl Into<String>, target: impl Into<String>) -> SessionHeader {
        SessionHeader {
            project: project.into(),
            target: target.into(),
            start: epoch_secs(SystemTime::now()),
            pid: std::process::id(),
            ..SessionHeader::default()
        }
    }
}

/// One log record: a line logged through the `log` facade, with the tonic that was running.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct LogRecord {
    /// The running tonic's id (TaskTonic's `id`), if a tonic was running.
    pub id: Option<u64>,
    /// The running tonic's name, if a tonic was running.
    pub tonic: Option<String>,
    /// `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`.
    pub level: String,
    /// The `log` target (by default the module that logged).
    pub target: String,
    /// When it was logged, in seconds since the Unix epoch (TaskTonic's `start@`).
    #[serde(rename = "start@")]
    pub at: f64,
    /// The text, one entry per line (TaskTonic's `log`).
    pub log: Vec<String>,
    /// The thread it was logged on, if named.
    pub thread: Option<String>,
    /// Its number in the sender's sequence (from 1): a gap is records dropped on the way.
    pub seq: u64,
}

impl Default for LogRecord {
    fn default() -> Self {
        LogRecord {
            id: None,
            tonic: None,
            level: "INFO".into(),
            target: String::new(),
            at: 0.0,
            log: Vec::new(),
            thread: None,
            seq: 0,
        }
    }
}

impl LogRecord {
    /// The text, its lines joined by `\n`.
    pub fn text(&self) -> String {
        self.log.join("\n")
    }
}

/// What a remote log's frame holds, for a reader: a session header or a record.
#[derive(Debug, Clone, PartialEq)]
pub enum LogFrame {
    /// A session (re)starts on this connection.
    Session(SessionHeader),
    /// One record.
    Record(LogRecord),
}

impl LogFrame {
    /// Decode one frame's payload.
    ///
    /// # Errors
    ///
    /// The payload is not a MessagePack map of a header or a record.
    pub fn decode(payload: &[u8]) -> Result<LogFrame, rmp_serde::decode::Error> {
        #[derive(Deserialize)]
        struct Probe {
            #[serde(default)]
            start_new_session: bool,
        }
        // Nesting capped as everywhere a peer's MessagePack is read.
        use crate::codec::from_slice_capped;
        let probe: Probe = from_slice_capped(&mut &payload[..])?;
        Ok(if probe.start_new_session {
            LogFrame::Session(from_slice_capped(&mut &payload[..])?)
        } else {
            LogFrame::Record(from_slice_capped(&mut &payload[..])?)
        })
    }
}

/// Seconds since the Unix epoch, as TaskTonic's `start@`.
pub(crate) fn epoch_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_maps_with_tasktonic_keys_and_read_back() {
        let header = SessionHeader::new("demo", "127.0.0.1:1767");
        let bytes = rmp_serde::to_vec_named(&header).expect("encoded");
        let value: rmpv::Value = rmp_serde::from_slice(&bytes).expect("a value");
        let keys: Vec<_> = value
            .as_map()
            .expect("a map")
            .iter()
            .filter_map(|(k, _)| k.as_str())
            .collect();
        for key in [
            "start_new_session",
            "project",
            "start@",
            "target",
            "logger_version",
        ] {
            assert!(keys.contains(&key), "{key} missing in {keys:?}");
        }
        assert_eq!(
            LogFrame::decode(&bytes).expect("decoded"),
            LogFrame::Session(header)
        );
        let record = LogRecord {
            id: Some(3),
            tonic: Some("echo".into()),
            log: vec!["hi".into()],
            seq: 1,
            ..LogRecord::default()
        };
        let bytes = rmp_serde::to_vec_named(&record).expect("encoded");
        assert_eq!(
            LogFrame::decode(&bytes).expect("decoded"),
            LogFrame::Record(record)
        );
        // The bytes docs/interop.md shows (Python's `msgpack.packb` writes the same).
        let record = LogRecord {
            id: Some(1),
            tonic: Some("hello world".into()),
            level: "INFO".into(),
            target: "hello_world".into(),
            at: 1_765_000_000.25,
            log: vec!["hi".into()],
            thread: Some("main".into()),
            seq: 1,
        };
        let hex: String = rmp_serde::to_vec_named(&record)
            .expect("encoded")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "88a2696401a5746f6e6963ab68656c6c6f20776f726c64a56c6576656ca4494e464fa6746172676574\
             ab68656c6c6f5f776f726c64a6737461727440cb41da4cf0d0100000a36c6f6791a26869a6746872\
             656164a46d61696ea373657101"
        );
        assert!(LogFrame::decode(b"\xc1").is_err());
        assert!(LogFrame::decode(b"\x93\x01\x02\x03").is_err());
    }
}

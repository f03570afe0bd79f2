//! A real `nats-server` on loopback, on a free port, for the tests; killed when dropped.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crossbeam_channel::unbounded;

/// A running `nats-server`.
pub struct NatsServer {
    pub port: u16,
    /// The route (cluster) port, when started with a cluster.
    pub cluster_port: Option<u16>,
    args: Vec<String>,
    child: Child,
}

/// True if `nats-server` runs here; otherwise a loud skip (never in CI).
pub fn have_nats_server() -> bool {
    let ok = Command::new("nats-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "nats-server is missing in CI: .ci/run installs it"
        );
        eprintln!("SKIPPED: `nats-server` is not installed (apt-get install nats-server)");
    }
    ok
}

fn port_after(line: &str, marker: &str) -> Option<u16> {
    let rest = &line[line.find(marker)? + marker.len()..];
    rest.trim().rsplit(':').next()?.parse().ok()
}

impl NatsServer {
    /// Start on a free port with `extra` arguments (`--user`, `--cluster …`).
    pub fn start(extra: &[&str]) -> NatsServer {
        let mut args: Vec<String> = vec!["-a".into(), "127.0.0.1".into(), "-p".into(), "-1".into()];
        args.extend(extra.iter().map(|s| (*s).to_string()));
        NatsServer::spawn(args)
    }

    fn spawn(args: Vec<String>) -> NatsServer {
        let mut child = Command::new("nats-server")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nats-server starts");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = unbounded();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    // Nobody listens any more: keep draining so the server never blocks.
                }
            }
        });
        let (mut port, mut cluster_port) = (None, None);
        let clustered = args.iter().any(|a| a == "--cluster");
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(20))
                .expect("nats-server did not come up");
            if let Some(p) = port_after(&line, "Listening for client connections on") {
                port = Some(p);
            }
            if let Some(p) = port_after(&line, "Listening for route connections on") {
                cluster_port = Some(p);
            }
            assert!(!line.contains("[FTL]"), "nats-server: {line}");
            if port.is_some() && (!clustered || cluster_port.is_some()) && line.contains("ready")
                || port.is_some() && clustered && cluster_port.is_some()
            {
                break;
            }
        }
        NatsServer {
            port: port.expect("a client port"),
            cluster_port,
            args,
            child,
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kill the server (no goodbye to its clients).
    pub fn kill(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }

    /// Start it again on the same ports.
    pub fn restart(&mut self) {
        self.kill();
        let mut args = self.args.clone();
        if let Some(i) = args.iter().position(|a| a == "-p") {
            args[i + 1] = self.port.to_string();
        }
        let again = NatsServer::spawn(args);
        *self = again;
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

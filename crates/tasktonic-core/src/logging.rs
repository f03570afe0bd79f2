//! Logging: every line written while a tonic runs carries its id and name.
//!
//! The runtime logs through the `log` facade. [`App`](crate::App) installs `env_logger` with a
//! format that prefixes `#id name` of the tonic running on the thread, unless a logger is already
//! installed; a custom logger can call [`current_tonic`] to do the same.

use std::cell::RefCell;
use std::io::Write;

use crate::TonicId;
use crate::catalyst::{current_core, running};

/// The tonic running on this thread right now, with its name: for log formatters.
pub fn current_tonic() -> Option<(TonicId, String)> {
    let id = TonicId::from_raw(running())?;
    let name = current_core()
        .and_then(|core| core.names.name_of(id))
        .unwrap_or_default();
    Some((id, name))
}

/// Write `record` as the app's logger does, one line: `LEVEL [thread] #id name: text` (without
/// `#id name` when no tonic runs on this thread). For a custom logger that wants the same lines.
///
/// # Errors
///
/// Writing to `out` failed.
pub fn write_record(out: &mut dyn Write, record: &log::Record<'_>) -> std::io::Result<()> {
    let thread = std::thread::current();
    let thread = thread.name().unwrap_or("?");
    match current_tonic() {
        Some((id, name)) => writeln!(
            out,
            "{:<5} [{thread}] {id} {name}: {}",
            record.level(),
            record.args()
        ),
        None => writeln!(out, "{:<5} [{thread}] {}", record.level(), record.args()),
    }
}

/// Install `env_logger` at `level` (overridable by `RUST_LOG`), formatted with the running tonic.
/// Does nothing if a logger is already installed. Also quiets the panic hook for panics in
/// sparkles (see [`quiet_sparkle_panics`]).
pub(crate) fn init(level: log::LevelFilter) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level.as_str()));
    builder.format(|buf, record| write_record(buf, record));
    let _ = builder.try_init();
    quiet_sparkle_panics();
}

thread_local! {
    /// The last panic the quiet hook kept to itself on this thread: the tonic that ran, the
    /// message and where it happened, for that tonic's failure line.
    static QUIETED: RefCell<Option<Quieted>> = const { RefCell::new(None) };
}

struct Quieted {
    tonic: u64,
    message: String,
    at: String,
}

/// A panic in a sparkle is a failure the runtime logs (one line, with the tonic, the message
/// and, from here, where it happened) and its base handles: the default panic hook's own
/// message would say it a second time. Installed once, in front of the hook that was there,
/// which still reports every other panic: outside a tonic, a second panic while one unwinds
/// or after one a sparkle caught itself (with that one), with backtraces asked for (`RUST_BACKTRACE`), with `panic = "abort"`,
/// or when error records are not logged (logging off: nothing else would say it).
fn quiet_sparkle_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        let backtraces = std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0");
        std::panic::set_hook(Box::new(move |info| {
            let tonic = running();
            if let Some(first) = QUIETED.with(|q| q.borrow_mut().take()) {
                // One kept and not yet claimed by a failure: this is a panic while it
                // unwinds (the process aborts), or it was caught by the sparkle itself.
                // Say both.
                eprintln!("panicked at {}: {}", first.at, first.message);
                return previous(info);
            }
            let logged = log::log_enabled!(target: "tasktonic_core::ctx::cell", log::Level::Error);
            if tonic == 0 || backtraces || cfg!(panic = "abort") || !logged {
                return previous(info);
            }
            let quieted = Quieted {
                tonic,
                message: crate::error::panic_message(info.payload()),
                at: info
                    .location()
                    .map_or_else(|| "an unknown place".to_string(), ToString::to_string),
            };
            QUIETED.with(|q| *q.borrow_mut() = Some(quieted));
        }));
    });
}

/// Where the panic of `tonic` with `message`, being turned into its failure, happened — if the
/// quiet hook kept it (and it is that panic, not one a sparkle caught itself).
pub(crate) fn take_panic_location(tonic: u64, message: &str) -> Option<String> {
    QUIETED
        .with(|q| q.borrow_mut().take())
        .filter(|q| q.tonic == tonic && q.message == message)
        .map(|q| q.at)
}

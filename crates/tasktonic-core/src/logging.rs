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
    /// Where the last panic in a sparkle on this thread happened, for its failure's log line.
    static PANICKED_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// A panic in a sparkle is a failure the runtime logs (one line, with the tonic, the message
/// and, from here, where it happened) and its base handles: the default panic hook's own
/// message would say it a second time. Installed once, in front of the hook that was there,
/// which still reports panics outside sparkles — and every panic when `RUST_BACKTRACE` asks
/// for backtraces.
fn quiet_sparkle_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        let backtraces = std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0");
        std::panic::set_hook(Box::new(move |info| {
            if running() == 0 || backtraces {
                return previous(info);
            }
            let at = info.location().map(ToString::to_string);
            PANICKED_AT.with(|p| *p.borrow_mut() = at);
        }));
    });
}

/// Where the panic being turned into a failure happened, if the quiet hook saw it.
pub(crate) fn take_panic_location() -> Option<String> {
    PANICKED_AT.with(|p| p.borrow_mut().take())
}

//! [`Settings`]: the app's path-keyed configuration store.

use std::collections::BTreeMap;

/// Path-keyed settings, as TaskTonic's formula keeps them (`tasktonic/project/name`, …).
///
/// Set on the [`App`](crate::App) builder, read by tonics through [`Ctx::settings`](crate::Ctx::settings).
///
/// # Examples
///
/// ```
/// use tasktonic_core::Settings;
///
/// let mut s = Settings::default();
/// s.set("net/port", "5555");
/// assert_eq!(s.get("net/port"), Some("5555"));
/// assert_eq!(s.parse::<u16>("net/port"), Some(5555));
/// assert_eq!(s.get_or("net/host", "127.0.0.1"), "127.0.0.1");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    values: BTreeMap<String, String>,
}

impl Settings {
    /// Set `path` to `value`, replacing any previous value.
    pub fn set(&mut self, path: impl Into<String>, value: impl Into<String>) {
        self.values.insert(path.into(), value.into());
    }

    /// The value at `path`.
    pub fn get(&self, path: &str) -> Option<&str> {
        self.values.get(path).map(String::as_str)
    }

    /// The value at `path`, or `default`.
    pub fn get_or<'a>(&'a self, path: &str, default: &'a str) -> &'a str {
        self.get(path).unwrap_or(default)
    }

    /// The value at `path` parsed as `T`; `None` if missing or unparsable.
    pub fn parse<T: std::str::FromStr>(&self, path: &str) -> Option<T> {
        self.get(path)?.parse().ok()
    }

    /// Every `(path, value)` under `prefix` (`""` for all), in path order.
    pub fn under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.values
            .range(prefix.to_string()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#![doc = include_str!("../README.md")]

pub use tasktonic_core::*;

/// Networking: the selector catalyst, TCP as tonics, codecs (the `tasktonic-net` crate).
pub use tasktonic_net as net;

#![doc = include_str!("../README.md")]

pub use tasktonic_core::*;

/// Networking: the selector catalyst, TCP and UDP as tonics, codecs (the `tasktonic-net` crate).
pub use tasktonic_net as net;

/// The names most programs need, the networking ones included: `use tasktonic::prelude::*;`.
pub mod prelude {
    pub use tasktonic_core::prelude::*;
    pub use tasktonic_net::prelude::*;
}

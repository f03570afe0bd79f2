//! TaskTonic for Rust: tonics (actors) on catalysts (threads), talking through sparkles.
//!
//! This facade re-exports the runtime ([`tasktonic_core`]); `use tasktonic::prelude::*;`
//! brings in the names most programs need. See the crate README and `docs/` for the guide.

pub use tasktonic_core::*;

#![doc = include_str!("../README.md")]

pub use tasktonic_core::*;

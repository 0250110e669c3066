//! Raw Linux system calls that the usual crates (rustix, libc wrappers) lack.
//!
//! This is the only crate of Condo allowed to hold `unsafe` code; every block carries a
//! `// SAFETY:` line saying why it is sound.
#![allow(unsafe_code)]

pub mod bpf;
pub mod netns;

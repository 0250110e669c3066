//! Condo's API wire types, shared by `condod` and its clients.
//!
//! Every request body denies unknown fields, so a misspelt option is an error rather than a
//! silent no-op. Times are RFC 3339 strings in UTC. With the `openapi` feature, [`openapi`]
//! builds the OpenAPI document that `condod` serves at `/openapi.json`.

mod container;
mod error;
mod network;
mod storage;
mod system;
mod tenancy;
mod volume;

#[cfg(feature = "openapi")]
mod openapi;

pub use container::*;
pub use error::{ErrorBody, ErrorCode};
pub use network::*;
pub use storage::*;
pub use system::*;
pub use tenancy::*;
pub use volume::*;

#[cfg(feature = "openapi")]
pub use openapi::{openapi, openapi_json};

/// The version of this API; the path prefix of every versioned endpoint is `/v1`.
pub const API_VERSION: &str = "v1";

/// Header a client sends on `POST /v1/containers/{id}/exec` to turn the connection into a raw
/// byte stream (the value of `Upgrade`).
pub const EXEC_UPGRADE: &str = "condo-exec";

/// Frames of an upgraded exec connection: `[kind u8][length u32 big-endian][payload]`.
///
/// Client to daemon: [`frame::INPUT`], [`frame::RESIZE`] (rows, columns as u16 big-endian),
/// [`frame::END`]. Daemon to client: [`frame::OUTPUT`], [`frame::ERROR`] (a message), and last
/// [`frame::EXIT`] (the exit code as i32 big-endian).
pub mod frame {
    /// Client → daemon: bytes for the terminal.
    pub const INPUT: u8 = 0;
    /// Client → daemon: the terminal's new size.
    pub const RESIZE: u8 = 1;
    /// Client → daemon: no more input.
    pub const END: u8 = 2;
    /// Daemon → client: terminal output.
    pub const OUTPUT: u8 = 1;
    /// Daemon → client: the exec failed; the payload says why.
    pub const ERROR: u8 = 2;
    /// Daemon → client: the process ended with this code.
    pub const EXIT: u8 = 3;

    /// Encodes one frame.
    pub fn encode(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(5 + payload.len());
        v.push(kind);
        v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    /// Decodes the first whole frame of `buf`: kind, payload and bytes used.
    pub fn decode(buf: &[u8]) -> Option<(u8, &[u8], usize)> {
        if buf.len() < 5 {
            return None;
        }
        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        let end = 5usize.checked_add(len)?;
        (buf.len() >= end).then(|| (buf[0], &buf[5..end], end))
    }
}

//! OCI images: unpacking layers.

pub mod unpack;

/// A reason an image operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Placeholder.
    #[error("image: {0}")]
    Other(String),
}

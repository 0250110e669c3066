//! Content store, OCI images, copy-on-write snapshots, instances, quotas and backups.
//!
//! The layering, bottom up: [`content`] holds digest-addressed blobs; [`image`] imports,
//! pulls, exports and unpacks images whose blobs live in the content store; [`snapshot`]
//! holds the copy-on-write filesystems behind one small [`snapshot::Snapshotter`] trait;
//! [`instance`] builds instance root filesystems, their snapshots, clones, quotas and
//! backups out of the other three.

#![warn(missing_docs)]

pub mod content;
pub mod digest;
pub mod fsutil;
pub mod image;
pub mod instance;
pub mod reverter;
pub mod snapshot;

pub use digest::Digest;

/// Every error of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error of the content store.
    #[error(transparent)]
    Content(#[from] content::ContentError),
    /// An error of a digest.
    #[error(transparent)]
    Digest(#[from] digest::DigestError),
    /// An error of layer unpacking.
    #[error(transparent)]
    Unpack(#[from] image::unpack::UnpackError),
    /// An error of images.
    #[error(transparent)]
    Image(#[from] image::ImageError),
    /// An error of a snapshotter.
    #[error(transparent)]
    Snapshot(#[from] snapshot::SnapshotError),
    /// An error of instances.
    #[error(transparent)]
    Instance(#[from] instance::InstanceError),
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<image::unpack::UnpackError> for instance::InstanceError {
    fn from(e: image::unpack::UnpackError) -> Self {
        instance::InstanceError::Backup(e.to_string())
    }
}

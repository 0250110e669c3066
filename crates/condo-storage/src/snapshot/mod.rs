//! Snapshotters.
/// A reason a snapshot operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Placeholder.
    #[error("snapshot: {0}")]
    Other(String),
}

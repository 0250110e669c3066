//! Instances.
/// A reason an instance operation failed.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// Placeholder.
    #[error("instance: {0}")]
    Other(String),
}

//! Content store, images, snapshots and quotas.

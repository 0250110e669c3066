//! Condo templates: the TOML model, parameters, the cached layer builder, and instantiation.
//!
//! A template folder holds `template.toml` and the files it copies. [`model::Template::load`]
//! reads and checks it; [`build::Builder`] turns it into an image whose layers are the
//! committed snapshots of its steps, reusing every step whose parent layer and content are
//! unchanged; [`instance::instantiate`] creates an instance of a built template with
//! parameters in O(1).

#![warn(missing_docs)]

pub mod base;
pub mod build;
pub mod fsroot;
pub mod instance;
pub mod layer;
pub mod meta;
pub mod model;
pub mod params;
mod record;
pub mod runner;
pub mod steps;

pub use build::{BuildError, BuildOptions, Builder, Built, Event};
pub use instance::{instantiate, Instance, InstantiateError};
pub use meta::{MetaStore, TemplateMeta};
pub use model::Template;

//! op-lifecycle: a Cloud Native Buildpacks lifecycle written in Rust.
pub mod analyze;
pub use cnb_data::{api, exit, files};
pub mod build;
pub mod buildpack;
pub mod cache;
pub mod creator;
pub mod detect;
pub mod env;
pub mod export;
pub mod flags;
pub mod launcher;
pub mod log;
pub mod privileges;
pub mod restore;
#[cfg(test)]
mod testing;

/// The version of this lifecycle.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Where its source is, as the launcher's `source.git.repository` of the build metadata label
/// names it (the reference writes `github.com/buildpacks/lifecycle`).
pub const REPOSITORY: &str = "github.com/octopilot/op";

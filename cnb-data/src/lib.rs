//! The data of the Cloud Native Buildpacks specifications that both op (which makes builders and
//! reads what the lifecycle leaves behind) and op-lifecycle (which implements the lifecycle) use:
//! the TOML files and image labels (`files`), the Platform and Buildpack API versions (`api`) and
//! the lifecycle's exit codes (`exit`). Formats only: no engine, no registry, no process.
pub mod api;
pub mod exit;
pub mod files;

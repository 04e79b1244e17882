//! op-lifecycle: a Cloud Native Buildpacks lifecycle written in Rust.
//!
//! op's own test builder images carry it as `/cnb/lifecycle/creator` and
//! `/cnb/lifecycle/launcher`, so that op's driver is tested against a lifecycle that honours the
//! platform contract (`docs/lifecycle.md`) without pulling any image from outside. The crate is
//! part of the workspace from the start so that the layout and the lints are shared; its phases
//! are built in their own issue.

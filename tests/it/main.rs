//! op's integration tests: the real `op` binary, real files, and (where a test says so) a real
//! registry. One test binary, so that the tests share one build and run in parallel.
#![allow(
    unreachable_pub,
    reason = "the helpers are shared between the modules of this test binary"
)]
#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

mod architecture;
mod build;
mod build_push;
mod cli;
mod differential;
mod errors;
mod lifecycle;
mod plan;
mod registry;
mod run;

//! op's integration tests: the real `op` binary, real files, and (where a test says so) a real
//! registry. One test binary, so that the tests share one build and run in parallel.
#![allow(
    unreachable_pub,
    reason = "the helpers are shared between the modules of this test binary"
)]
#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

/// Makes each named function `fn(Lifecycle)` a pair of tests, in a module of the same name:
/// `<name>::op_lifecycle` and `<name>::reference_lifecycle`.
macro_rules! on_each_builder {
    ($($test:ident),+ $(,)?) => {$(
        mod $test {
            #[test]
            fn op_lifecycle() {
                super::$test($crate::common::cnb::Lifecycle::Op);
            }

            #[test]
            fn reference_lifecycle() {
                super::$test($crate::common::cnb::Lifecycle::Reference);
            }
        }
    )+};
}

mod architecture;
mod build;
mod build_push;
mod cli;
mod differential;
mod errors;
mod lifecycle;
mod plan;
mod platforms;
mod promote;
mod registry;
mod run;

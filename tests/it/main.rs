//! op's integration tests: the real `op` binary, real files, and (where a test says so) a real
//! registry. One test binary, so that the tests share one build and run in parallel.
#![allow(
    unreachable_pub,
    reason = "the helpers are shared between the modules of this test binary"
)]
#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

/// Makes each named function `fn(Lifecycle)` a pair of tests on the current engine, in a module
/// of the same name: `<name>::op_lifecycle` and `<name>::reference_lifecycle`.
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

/// Makes each named function `fn(Lifecycle)` four tests, one per engine and builder, in a module
/// of the same name: `<name>::{current,docker_20_10}::{op_lifecycle,reference_lifecycle}` (the
/// engines of `common::docker::Engine`).
macro_rules! on_each_engine_and_builder {
    ($($test:ident),+ $(,)?) => {$(
        mod $test {
            mod current {
                #[test]
                fn op_lifecycle() {
                    $crate::common::docker::Engine::Current
                        .run(|| super::super::$test($crate::common::cnb::Lifecycle::Op));
                }

                #[test]
                fn reference_lifecycle() {
                    $crate::common::docker::Engine::Current
                        .run(|| super::super::$test($crate::common::cnb::Lifecycle::Reference));
                }
            }

            mod docker_20_10 {
                #[test]
                fn op_lifecycle() {
                    $crate::common::docker::Engine::Docker20
                        .run(|| super::super::$test($crate::common::cnb::Lifecycle::Op));
                }

                #[test]
                fn reference_lifecycle() {
                    $crate::common::docker::Engine::Docker20
                        .run(|| super::super::$test($crate::common::cnb::Lifecycle::Reference));
                }
            }
        }
    )+};
}

/// Makes each named function `fn()` a test per engine, in a module of the same name:
/// `<name>::current` and `<name>::docker_20_10`.
macro_rules! on_each_engine {
    ($($test:ident),+ $(,)?) => {$(
        mod $test {
            #[test]
            fn current() {
                $crate::common::docker::Engine::Current.run(super::$test);
            }

            #[test]
            fn docker_20_10() {
                $crate::common::docker::Engine::Docker20.run(super::$test);
            }
        }
    )+};
}

mod architecture;
mod build;
mod build_push;
mod charts;
mod cli;
mod cluster_build;
mod differential;
mod errors;
mod image_store;
mod kube_cluster;
mod lifecycle;
mod plan;
mod platforms;
mod promote;
mod rebase;
mod registry;
mod remote;
mod reuse;
mod run;
mod secure;
mod snapshots;
mod watch;

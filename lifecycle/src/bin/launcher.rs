//! The static `launcher` of app images (`/cnb/lifecycle/launcher`), kept apart from the
//! `lifecycle` binary so that it stays small.

fn main() -> std::process::ExitCode {
    op_lifecycle::launcher::main()
}

use std::process::ExitCode;

fn main() -> ExitCode {
    ztpd::cli::main()
}

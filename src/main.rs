use std::process::ExitCode;

// mimalloc: loading a 10 000-device plan makes millions of small allocations;
// glibc malloc spent ~15% of `validate` in malloc/free and page faults.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    ztpd::cli::main()
}

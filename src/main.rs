//! The `kiln` executable: kiln's command line with its own objectives.

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    kiln::cli::main(kiln::Objectives::builtin())
}

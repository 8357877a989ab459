//! `livecdn`: the command line. It only parses arguments and dispatches to
//! the crates; see `src/cli/` for each command.

mod cli;

/// mimalloc instead of the system allocator: the servers allocate many small,
/// short-lived objects per request across threads, where glibc malloc showed
/// up in profiles of the edge under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let args = cli::Cli::parse();
    cli::init_tracing(args.log_json);
    cli::dispatch(args)
}

//! `livecdn`: the command line. It only parses arguments and dispatches to
//! the crates; see `src/cli/` for each command.

mod cli;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let args = cli::Cli::parse();
    cli::init_tracing(args.log_json);
    cli::dispatch(args)
}

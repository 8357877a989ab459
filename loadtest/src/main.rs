//! `livecdn-loadtest`: the same commands as `livecdn loadtest`.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    livecdn_loadtest::cli::init_tracing();
    livecdn_loadtest::cli::run(livecdn_loadtest::cli::LoadtestArgs::parse())
}

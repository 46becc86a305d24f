//! `headstart`: transfer learning on images. A thin CLI over the crates in `crates/`.

mod cli;
mod cmd;
mod progress;
mod term;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", term::escape(&cmd::message(&e)));
            ExitCode::from(cmd::exit_status(&e))
        }
    }
}

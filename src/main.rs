//! `headstart`: transfer learning on images. A thin CLI over the crates in `crates/`.

mod cli;
mod cmd;
mod term;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", term::escape(&message(&e)));
            ExitCode::from(cmd::exit_status(&e))
        }
    }
}

/// The error and its causes, each cause once: library errors already quote
/// their source (`path: io error`), so a cause that the message so far
/// contains is not repeated.
fn message(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if !msg.contains(&c) {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(&c);
        }
    }
    msg
}

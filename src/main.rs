//! `headstart`: transfer learning on images. A thin CLI over the crates in `crates/`.

// The clap help texts in cli.rs are doc comments written for `--help`
// (`cuda[:ID]`, `<class>`, URLs), not rustdoc markup.
#![allow(
    rustdoc::broken_intra_doc_links,
    rustdoc::invalid_html_tags,
    rustdoc::bare_urls
)]

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
            eprintln!("error: {}", term::escape(&cmd::message(&e)));
            if let Some(fix) = cmd::fix(&e) {
                eprintln!("fix: {}", term::escape(&fix));
            }
            ExitCode::from(cmd::exit_status(&e))
        }
    }
}

//! Command implementations: each turns parsed flags into one library call of
//! `headstart-api` and prints its result.

mod audit;
mod cache;
mod compare;
mod demo;
mod doctor;
mod errors;
mod extract;
mod fit;
mod models;
mod predict;
mod runtime;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use headstart_api::Env;
use headstart_api::progress::Bar;

use crate::cli::{Cli, Command, Global, RuntimeCommand};

pub use errors::{EXIT_ERROR, EXIT_PARTIAL, exit_status, fix, message};

/// Writes `bytes` to `path` atomically, creating its folder.
pub fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use anyhow::Context;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    headstart_files::write_atomic(path, bytes)
        .with_context(|| format!("writing {}", path.display()))
}

/// What every command shares: the library's environment and `--quiet`.
pub struct Ctx {
    pub env: Env,
    pub quiet: bool,
}

impl Ctx {
    fn new(g: Global) -> Result<Ctx> {
        let mut env = Env::new(g.home, g.ort_lib)?;
        if g.quiet {
            env = env.with_log(Arc::new(|_| {}));
        }
        Ok(Ctx {
            env,
            quiet: g.quiet,
        })
    }

    /// Prints a progress line on stderr unless `--quiet` (escaped).
    pub fn log(&self, msg: &str) {
        self.env.log(msg);
    }

    /// A progress bar on stderr (silent with `--quiet`).
    pub fn bar(&self) -> Bar {
        Bar::new(self.quiet)
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let ctx = Ctx::new(cli.global)?;
    match cli.command {
        Command::Demo(args) => demo::run(&ctx, args),
        Command::Doctor => doctor::run(&ctx),
        Command::Runtime(RuntimeCommand::Install { gpu, tensorrt }) => {
            runtime::install(&ctx, gpu, tensorrt)
        }
        Command::Models(m) => models::run(&ctx, m),
        Command::Extract(a) => extract::run(&ctx, a),
        Command::Cache(c) => cache::run(c),
        Command::Fit(a) => fit::run(&ctx, a),
        Command::Eval(a) => fit::eval(&ctx, a),
        Command::Audit(a) => audit::run(&ctx, a),
        Command::Compare(a) => compare::run(&ctx, a),
        Command::Predict(a) => predict::run(&ctx, a),
        Command::Export(a) => predict::export(&ctx, a),
    }
}

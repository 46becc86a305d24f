//! Command implementations: each turns parsed flags into library calls.

mod demo;
mod doctor;
mod extract;
mod fit;
mod export;
mod predict;
mod models;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use headstart_provision::Home;

use crate::cli::{Cli, Command, Global, RuntimeCommand};

/// Exit status for a failed command.
pub const EXIT_ERROR: u8 = 1;
/// Exit status when a run finished but some input files failed.
pub const EXIT_PARTIAL: u8 = 3;

/// Shared context: cache location, runtime override, verbosity.
pub struct Ctx {
    pub home: Home,
    pub ort_lib: Option<PathBuf>,
    pub quiet: bool,
}

impl Ctx {
    fn new(g: Global) -> Result<Ctx> {
        let home = match g.home {
            Some(h) => Home::at(h),
            None => Home::from_env()?,
        };
        Ok(Ctx {
            home,
            ort_lib: g.ort_lib.filter(|p| !p.as_os_str().is_empty()),
            quiet: g.quiet,
        })
    }

    /// Prints a progress line on stderr unless `--quiet`.
    pub fn log(&self, msg: &str) {
        if !self.quiet {
            eprintln!("headstart: {msg}");
        }
    }

    /// Locates (provisioning if needed) and loads ONNX Runtime.
    pub fn runtime(&self) -> Result<&'static headstart_extract::runtime::Runtime> {
        let lib = headstart_extract::runtime::locate(&self.home, self.ort_lib.as_deref(), &|m| {
            self.log(m)
        })?;
        Ok(headstart_extract::runtime::init(&lib.path)?)
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let ctx = Ctx::new(cli.global)?;
    match cli.command {
        Command::Demo(args) => demo::run(&ctx, args),
        Command::Doctor => doctor::run(&ctx),
        Command::Runtime(RuntimeCommand::Install) => {
            let (path, how) = headstart_extract::runtime::install(&ctx.home, &|m| ctx.log(m))?;
            let rt = headstart_extract::runtime::init(&path)?;
            let state = match how {
                headstart_provision::Provisioned::Cached => "already installed",
                headstart_provision::Provisioned::Installed => "installed",
            };
            println!("ONNX Runtime {} {state} at {}", rt.version, path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Models(m) => models::run(&ctx, m),
        Command::Extract(a) => extract::run(&ctx, a),
        Command::Cache(c) => extract::cache(c),
        Command::Fit(a) => fit::run(&ctx, a),
        Command::Eval(a) => fit::eval(a),
        Command::Predict(a) => predict::run(&ctx, a),
        Command::Export(a) => export::run(&ctx, a),
    }
}

//! Command implementations: each turns parsed flags into library calls.

mod audit;
mod cache;
mod compare;
mod config;
mod demo;
mod doctor;
mod errors;
mod export;
mod extract;
mod fit;
pub mod hint;
mod models;
mod predict;
mod quantize;
mod report;
mod runtime;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use headstart_provision::Home;
use headstart_runtime::{Device, LibSource, Runtime, RuntimeError};

use crate::cli::{Cli, Command, Global, RuntimeCommand};

pub use errors::{EXIT_ERROR, EXIT_PARTIAL, Usage, exit_status, message, require};

/// Writes `bytes` to `path` atomically, creating its folder.
pub fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use anyhow::Context;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    headstart_provision::write_atomic(path, bytes)
        .with_context(|| format!("writing {}", path.display()))
}

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

    /// Prints a progress line on stderr unless `--quiet` (control characters
    /// in file names escaped).
    pub fn log(&self, msg: &str) {
        if !self.quiet {
            eprintln!("headstart: {}", crate::term::escape(msg));
        }
    }

    /// Locates (provisioning if needed) and loads ONNX Runtime.
    pub fn runtime(&self) -> Result<&'static Runtime, RuntimeError> {
        self.runtime_for(Device::Cpu)
    }

    /// Like [`Ctx::runtime`], for sessions on `device`: a GPU device loads the GPU build
    /// from the cache (`runtime install --gpu`) when it is there and `--ort-lib` is not given,
    /// and says which build it loads.
    pub fn runtime_for(&self, device: Device) -> Result<&'static Runtime, RuntimeError> {
        let gpu = !matches!(device, Device::Cpu);
        let lib = headstart_runtime::locate_for(&self.home, self.ort_lib.as_deref(), gpu, &|m| {
            self.log(m)
        })?;
        match lib.source {
            LibSource::GpuCache => self.log(&format!(
                "using the GPU build of ONNX Runtime at {} (--ort-lib overrides)",
                lib.path.display()
            )),
            LibSource::Cache | LibSource::Installed if gpu => self.log(
                "no GPU build of ONNX Runtime in the cache (`headstart runtime install --gpu` installs it); loading the CPU build",
            ),
            _ => {}
        }
        headstart_runtime::init(&lib.path)
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
        Command::Eval(a) => fit::eval(a),
        Command::Audit(a) => audit::run(&ctx, a),
        Command::Compare(a) => compare::run(&ctx, a),
        Command::Predict(a) => predict::run(&ctx, a),
        Command::Export(a) => export::run(&ctx, a),
    }
}

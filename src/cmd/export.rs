//! `headstart export`.

use std::process::ExitCode;

use anyhow::Result;

use super::Ctx;
use crate::cli::ExportArgs;

pub fn run(_ctx: &Ctx, _a: ExportArgs) -> Result<ExitCode> {
    anyhow::bail!("export is not implemented yet")
}

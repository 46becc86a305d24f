//! `headstart predict`.

use std::process::ExitCode;

use anyhow::Result;

use super::Ctx;
use crate::cli::PredictArgs;

pub fn run(_ctx: &Ctx, _a: PredictArgs) -> Result<ExitCode> {
    anyhow::bail!("predict is not implemented yet")
}

//! `headstart models fetch | list | inspect`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use headstart_models::zoo;
use headstart_provision::Provisioned;

use super::Ctx;
use crate::cli::ModelsCommand;

pub fn run(ctx: &Ctx, cmd: ModelsCommand) -> Result<ExitCode> {
    match cmd {
        ModelsCommand::Fetch { name } => {
            let (m, how) = zoo::ensure(&ctx.home, &name, &|s| ctx.log(s))?;
            let state = match how {
                Provisioned::Cached => "already installed",
                Provisioned::Installed => "installed",
            };
            println!("{name} {state} at {}", m.onnx.display());
        }
        ModelsCommand::List => {
            for name in zoo::BUILTIN {
                match zoo::installed(&ctx.home, name) {
                    Some(m) => println!("{name}\tinstalled\t{}", m.onnx.display()),
                    None => println!("{name}\tnot installed (headstart models fetch {name})"),
                }
            }
        }
        ModelsCommand::Inspect { model, json } => {
            let path = resolve_path(ctx, &model)?;
            let size = std::fs::metadata(&path)
                .with_context(|| format!("reading {}", path.display()))?
                .len();
            let proto = headstart_onnx::load_model(&path)?;
            let mut summary = headstart_onnx::inspect::summarize(&proto, size);
            // The library says why there is no feature tensor; the fix names the flag.
            if let (Err(why), Err(e)) = (
                &mut summary.features,
                headstart_onnx::features::find_penultimate(&proto),
            ) && let Some(fix) = super::hint::fix_of(&e)
            {
                *why = format!("{why}; {fix}");
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                println!("{}", path.display());
                println!("{summary}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A built-in model name (installed on demand) or a path to an .onnx file.
fn resolve_path(ctx: &Ctx, model: &str) -> Result<PathBuf> {
    if zoo::BUILTIN.contains(&model) {
        return Ok(zoo::ensure(&ctx.home, model, &|s| ctx.log(s))?.0.onnx);
    }
    let p = PathBuf::from(model);
    anyhow::ensure!(
        p.is_file(),
        "{model}: no such file, and not a built-in model ({})",
        zoo::BUILTIN.join(", ")
    );
    Ok(p)
}

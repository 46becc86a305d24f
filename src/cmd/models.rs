//! `headstart models fetch | list | quantize | inspect`.

use std::process::ExitCode;

use anyhow::Result;
use headstart_models::zoo;
use headstart_provision::Provisioned;

use super::Ctx;
use crate::cli::ModelsCommand;

pub fn run(ctx: &Ctx, cmd: ModelsCommand) -> Result<ExitCode> {
    match cmd {
        ModelsCommand::Fetch { name } => {
            let (m, how) = zoo::ensure(&ctx.env.home, &name, &|s| ctx.log(s))?;
            let state = match how {
                Provisioned::Cached => "already installed",
                Provisioned::Installed => "installed",
            };
            println!("{name} {state} at {}", m.onnx.display());
        }
        ModelsCommand::List { json } => {
            let rows = headstart_api::models_list(&ctx.env);
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", headstart_api::models_table(&rows));
            }
        }
        ModelsCommand::Quantize(a) => {
            let q = headstart_api::quantize(&ctx.env, &a.model, &a.options)?;
            let (cal, name) = (&q.calibration, &a.options.out);
            println!(
                "installed {name} at {} ({} activation tensors calibrated on {} images, {} skipped, {:.1} s); use --model {name}",
                q.model.onnx.display(),
                cal.tensors,
                cal.images,
                cal.skipped,
                cal.seconds,
            );
        }
        ModelsCommand::Inspect { model, json } => {
            let (path, summary) = headstart_api::inspect(&ctx.env, &model)?;
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

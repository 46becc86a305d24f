//! `headstart doctor`: what is installed, what is missing, and how to fix it.

use std::process::ExitCode;

use anyhow::Result;
use headstart_extract::runtime;
use headstart_models::zoo;

use super::Ctx;

pub fn run(ctx: &Ctx) -> Result<ExitCode> {
    let mut problems = Vec::new();
    println!("headstart {}", env!("CARGO_PKG_VERSION"));
    println!("cache:          {}", ctx.home.root().display());
    println!(
        "cores:          {}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let (lib, how) = match &ctx.ort_lib {
        Some(p) => (Some(p.clone()), "from --ort-lib / ORT_DYLIB_PATH"),
        None => {
            let p = runtime::cached_path(&ctx.home);
            if p.is_file() {
                (Some(p), "cached")
            } else {
                (None, "")
            }
        }
    };
    match lib {
        None => {
            println!("runtime:        not installed");
            problems.push("ONNX Runtime is not installed: run `headstart runtime install` (or pass --ort-lib PATH)".to_string());
        }
        Some(path) => match runtime::init(&path) {
            Ok(rt) => {
                println!(
                    "runtime:        ONNX Runtime {} at {} ({how})",
                    rt.version,
                    path.display()
                );
                let eps: Vec<String> = runtime::providers()
                    .into_iter()
                    .map(|(n, ok)| format!("{n} {}", if ok { "yes" } else { "no" }))
                    .collect();
                println!("providers:      {}", eps.join(", "));
            }
            Err(e) => {
                println!("runtime:        cannot load {} ({how})", path.display());
                problems.push(e.to_string());
            }
        },
    }
    match zoo::installed(&ctx.home, zoo::DEFAULT_MODEL) {
        Some(m) => println!(
            "default model:  {} at {} ({}-d features, from {})",
            m.card.name,
            m.onnx.display(),
            m.card.feature_dim,
            m.card.provenance.source
        ),
        None => {
            println!("default model:  {} not installed", zoo::DEFAULT_MODEL);
            problems.push(format!(
                "the default model is not installed: run `headstart models fetch {}`",
                zoo::DEFAULT_MODEL
            ));
        }
    }
    if problems.is_empty() {
        println!("status:         ok");
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &problems {
            println!("fix:            {p}");
        }
        Ok(ExitCode::from(super::EXIT_ERROR))
    }
}

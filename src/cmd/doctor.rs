//! `headstart doctor`: what is installed, what is missing, and how to fix it.

use std::process::ExitCode;

use anyhow::Result;
use headstart_models::zoo;
use headstart_runtime::{self as runtime, Device, probe_device};

use super::Ctx;

pub fn run(ctx: &Ctx) -> Result<ExitCode> {
    let mut problems = Vec::new();
    println!("headstart {}", env!("CARGO_PKG_VERSION"));
    println!("cache:          {}", ctx.env.home.root().display());
    println!(
        "cores:          {}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let cpu_lib = runtime::cached_path(&ctx.env.home);
    let gpu = runtime::gpu::installed(&ctx.env.home);
    // One library can be loaded per process: an explicit one, else the GPU build (its
    // providers are a superset of the CPU build's), else the CPU build.
    let (lib, how) = match (&ctx.env.ort_lib, &gpu) {
        (Some(p), _) => (Some(p.clone()), "from --ort-lib / ORT_DYLIB_PATH"),
        (None, Some((p, _))) => (Some(p.clone()), "GPU build, cached"),
        (None, None) if cpu_lib.is_file() => (Some(cpu_lib.clone()), "cached"),
        (None, None) => (None, ""),
    };
    if ctx.env.ort_lib.is_none() {
        if gpu.is_some() && cpu_lib.is_file() {
            println!(
                "runtime:        ONNX Runtime {} (CPU build) at {} (cached)",
                runtime::ORT_VERSION,
                cpu_lib.display()
            );
        } else if !cpu_lib.is_file() {
            println!("runtime:        not installed");
            problems.push("ONNX Runtime is not installed: run `headstart runtime install` (or pass --ort-lib PATH)".to_string());
        }
    }
    if let Some((p, m)) = &gpu {
        println!(
            "gpu runtime:    ONNX Runtime {} (GPU build: CUDA 13, cuDNN 9{}) at {}",
            m.onnxruntime,
            if m.tensorrt { ", TensorRT 10" } else { "" },
            p.display()
        );
    }
    if let Some(path) = lib {
        match runtime::init(&path) {
            Ok(rt) => {
                println!(
                    "{}ONNX Runtime {} at {} ({how})",
                    if how.starts_with("GPU") {
                        "loaded:         "
                    } else {
                        "runtime:        "
                    },
                    rt.version,
                    path.display()
                );
                let eps: Vec<String> = runtime::providers()
                    .into_iter()
                    .map(|(n, ok)| format!("{n} {}", if ok { "yes" } else { "no" }))
                    .collect();
                println!("providers:      {} (compiled in)", eps.join(", "));
                if let Some(p) = &rt.preload {
                    println!(
                        "gpu libraries:  {} of {} loaded",
                        p.loaded.len(),
                        p.loaded.len() + p.failed.len()
                    );
                    for f in &p.failed {
                        println!("                cannot load {f}");
                    }
                }
                let trt = gpu.as_ref().is_some_and(|(_, m)| m.tensorrt);
                let probes = [
                    ("cuda", Device::Cuda(0), runtime::providers()[1].1),
                    (
                        "tensorrt",
                        Device::TensorRt(0),
                        runtime::providers()[2].1 && (trt || ctx.env.ort_lib.is_some()),
                    ),
                ];
                for (name, device, compiled) in probes {
                    if !compiled {
                        continue;
                    }
                    match probe_device(rt, device) {
                        Ok(ep) => println!(
                            "--device {name}:{}{ep} registers on GPU 0",
                            " ".repeat(6usize.saturating_sub(name.len()))
                        ),
                        Err(e) => println!(
                            "--device {name}:{}not usable here: {}",
                            " ".repeat(6usize.saturating_sub(name.len())),
                            e.replace('\n', " ")
                        ),
                    }
                }
            }
            Err(e) => {
                println!("runtime:        cannot load {} ({how})", path.display());
                let e = headstart_api::Error::from(e);
                problems.push(match e.fix() {
                    Some(fix) => format!("{e}\nfix: {fix}"),
                    None => e.to_string(),
                });
            }
        }
    }
    if gpu.is_none() {
        println!(
            "gpu runtime:    not installed (`headstart runtime install --gpu` for --device cuda)"
        );
    }
    match zoo::installed(&ctx.env.home, zoo::DEFAULT_MODEL) {
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

//! `headstart runtime install`.

use std::process::ExitCode;

use anyhow::Result;
use headstart_runtime::Device;

use super::Ctx;

/// `headstart runtime install [--gpu [--tensorrt]]`.
pub fn install(ctx: &Ctx, gpu: bool, tensorrt: bool) -> Result<ExitCode> {
    let (path, how) = if gpu {
        headstart_runtime::gpu::install_gpu(&ctx.env.home, tensorrt, &|m| ctx.log(m))?
    } else {
        headstart_runtime::install(&ctx.env.home, &|m| ctx.log(m))?
    };
    let state = match how {
        headstart_provision::Provisioned::Cached => "already installed",
        headstart_provision::Provisioned::Installed => "installed",
    };
    let rt = headstart_runtime::init(&path)?;
    if !gpu {
        println!("ONNX Runtime {} {state} at {}", rt.version, path.display());
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "ONNX Runtime {} (GPU build) {state} at {}",
        rt.version,
        path.display()
    );
    println!(
        "  --device cuda / tensorrt use it automatically; or pass --ort-lib {}",
        path.display()
    );
    if let Some(p) = &rt.preload {
        println!(
            "  NVIDIA libraries loaded: {} of {}",
            p.loaded.len(),
            p.loaded.len() + p.failed.len()
        );
        for f in &p.failed {
            println!("  not loadable here: {f}");
        }
    }
    let probes = [
        ("CUDAExecutionProvider", Device::Cuda(0), true),
        ("TensorrtExecutionProvider", Device::TensorRt(0), tensorrt),
    ];
    for (name, device, wanted) in probes {
        if !wanted {
            continue;
        }
        match headstart_runtime::probe_device(rt, device) {
            Ok(_) => println!("  {name}: registers on GPU 0"),
            Err(e) => println!(
                "  {name}: does not register on this machine: {}",
                e.lines().next().unwrap_or("")
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}

//! `headstart export`: a saved head as one ONNX classifier, fused with its
//! backbone (optionally with the preprocessing in the graph) or alone.

use std::process::ExitCode;

use anyhow::{Context, Result};
use headstart_fit::Head;
use headstart_serve::export::{ExportInput, check_out, export};

use super::Ctx;
use super::config::resolve_for_head;
use crate::cli::ExportArgs;

pub fn run(ctx: &Ctx, a: ExportArgs) -> Result<ExitCode> {
    check_out(&a.out, a.force.force)?;
    let head = Head::load(&a.head)
        .with_context(|| format!("loading the head from {}", a.head.display()))?;
    let (backbone, input) = if a.head_only {
        if a.model.model.is_some() || a.model.recipe.exact_decode {
            ctx.log("--head-only exports no backbone; --model and its flags are not used");
        }
        (None, ExportInput::Features)
    } else if a.with_preprocessing {
        (
            Some(resolve_for_head(ctx, &head, &a.model)?),
            ExportInput::ImageUint8,
        )
    } else {
        (
            Some(resolve_for_head(ctx, &head, &a.model)?),
            ExportInput::Tensor,
        )
    };
    let exported = export(&head, backbone.as_ref(), input)?;
    exported.save(&a.out, a.force.force)?;
    print!("{}", exported.describe(&a.out));
    Ok(ExitCode::SUCCESS)
}

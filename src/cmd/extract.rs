//! `headstart extract` and `headstart cache`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use headstart_extract::{
    Device, Extractor, FeatureSel, PreprocessOverrides, ResolvedBackbone, SessionConfig, Shard,
    View,
};
use headstart_models::preprocess::{Filter, Layout};

use super::Ctx;
use crate::cli::{CacheCommand, DeviceArgs, ExtractArgs, FilterArg, LayoutArg, ModelArgs};

/// Resolves `--model` (or `default` when not given), `--features` and the preprocessing flags.
pub fn resolve_model(ctx: &Ctx, m: &ModelArgs, default: &str) -> Result<ResolvedBackbone> {
    let spec = m.model.as_deref().unwrap_or(default);
    let features: FeatureSel = m.features.parse()?;
    let overrides = PreprocessOverrides {
        preset: m.preset.clone(),
        size: m.size,
        crop: m.crop,
        mean: m.mean,
        std: m.std,
        filter: m.filter.map(|f| match f {
            FilterArg::Nearest => Filter::Nearest,
            FilterArg::Bilinear => Filter::Bilinear,
            FilterArg::Bicubic => Filter::Bicubic,
            FilterArg::Lanczos3 => Filter::Lanczos3,
        }),
        layout: m.layout.map(|l| match l {
            LayoutArg::Nchw => Layout::Nchw,
            LayoutArg::Nhwc => Layout::Nhwc,
        }),
    };
    Ok(headstart_extract::resolve(
        &ctx.home,
        spec,
        &features,
        &overrides,
        &|s| ctx.log(s),
    )?)
}

/// Session settings from `--device` and friends; the TensorRT engine cache lives in the headstart cache.
pub fn session_config(ctx: &Ctx, d: &DeviceArgs) -> Result<SessionConfig> {
    let device: Device = d.device.parse()?;
    let mut cfg = SessionConfig {
        device,
        allow_cpu_fallback: d.allow_cpu_fallback,
        fp16: d.fp16,
        ..SessionConfig::default()
    };
    if let Some(n) = d.intra_threads {
        super::require(n > 0, || "--intra-threads must be at least 1".into())?;
        cfg.intra_threads = n;
    }
    if matches!(device, Device::TensorRt(_)) {
        cfg.trt_cache = Some(ctx.home.dir("tensorrt-engines")?);
    }
    Ok(cfg)
}

/// `--shard`, else the array index of a known scheduler.
fn shard(flag: Option<&str>) -> Result<Option<Shard>> {
    if let Some(s) = flag {
        return Ok(Some(s.parse::<Shard>()?));
    }
    shard_from_env(&|k| std::env::var(k).ok())
}

/// Shard from Kubernetes Indexed Jobs, Slurm arrays or AWS Batch arrays.
pub fn shard_from_env(var: &dyn Fn(&str) -> Option<String>) -> Result<Option<Shard>> {
    let num = |k: &str| -> Result<Option<u32>> {
        var(k)
            .map(|v| {
                v.trim()
                    .parse::<u32>()
                    .with_context(|| format!("{k}=`{v}` is not a number"))
            })
            .transpose()
    };
    let pair = |i: u32, n: u32, how: &str| -> Result<Option<Shard>> {
        anyhow::ensure!(
            n > 0 && i < n,
            "{how}: shard index {i} is not below the shard count {n}"
        );
        Ok(Some(Shard { index: i, count: n }))
    };
    if let Some(i) = num("JOB_COMPLETION_INDEX")? {
        let n = num("HEADSTART_SHARD_COUNT")?.context(
            "JOB_COMPLETION_INDEX is set (Kubernetes Indexed Job) but the shard count is not: set HEADSTART_SHARD_COUNT to the Job's completions, or pass --shard I/N",
        )?;
        return pair(i, n, "JOB_COMPLETION_INDEX/HEADSTART_SHARD_COUNT");
    }
    if let (Some(id), Some(n)) = (num("SLURM_ARRAY_TASK_ID")?, num("SLURM_ARRAY_TASK_COUNT")?) {
        let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        return pair(id.saturating_sub(min), n, "SLURM_ARRAY_TASK_ID/COUNT");
    }
    if let (Some(i), Some(n)) = (
        num("AWS_BATCH_JOB_ARRAY_INDEX")?,
        num("AWS_BATCH_JOB_ARRAY_SIZE")?,
    ) {
        return pair(i, n, "AWS_BATCH_JOB_ARRAY_INDEX/SIZE");
    }
    Ok(None)
}

/// A progress bar on a terminal; silent when stderr is not one, but its messages
/// still go to stderr (unless `--quiet`).
pub struct Bar(indicatif::ProgressBar, bool);

impl Bar {
    pub fn new(quiet: bool) -> Bar {
        let pb = if quiet {
            indicatif::ProgressBar::hidden()
        } else {
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr())
        };
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} images  {per_sec}  ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Bar(pb, quiet)
    }
}

impl headstart_extract::Progress for Bar {
    fn start(&self, total: u64) {
        self.0.set_length(total);
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
    fn message(&self, msg: &str) {
        if self.1 {
            return;
        }
        let msg = crate::term::escape(msg);
        if self.0.is_hidden() {
            eprintln!("headstart: {msg}");
        } else {
            self.0.println(msg);
        }
    }
}

pub fn run(ctx: &Ctx, a: ExtractArgs) -> Result<ExitCode> {
    let views = a
        .views
        .iter()
        .map(|v| v.parse::<View>())
        .collect::<Result<Vec<_>, _>>()?;
    let extractor = Extractor::builder(&a.input, &a.out)
        .unlabeled(a.unlabeled)
        .label_from(a.label_from.parse()?)
        .batch_size(a.batch_size)
        .threads(a.threads)
        .views(views)
        .strict(a.strict)
        .prune(a.prune)
        .shard(shard(a.shard.as_deref())?)
        .flush_every(a.flush_every, std::time::Duration::from_secs(60))
        .session(session_config(ctx, &a.device)?)
        .build()?;
    let device: Device = a.device.device.parse()?;
    let rt = ctx.runtime_for(device)?;
    let model = resolve_model(ctx, &a.model, headstart_models::zoo::DEFAULT_MODEL)?;
    let bar = Bar::new(ctx.quiet);
    let summary = extractor.run(rt, &model, &bar)?;
    bar.0.finish_and_clear();
    if a.json {
        // One line, one write: shards sharing a stdout (scripts/shards.sh, array jobs
        // logging to one file) must not interleave their summaries.
        let mut line = serde_json::to_string(&summary)?;
        line.push('\n');
        std::io::Write::write_all(&mut std::io::stdout().lock(), line.as_bytes())?;
    } else {
        print!("{}", crate::term::escape_lines(&summary.to_string()));
    }
    Ok(if summary.failed > 0 {
        ExitCode::from(super::EXIT_PARTIAL)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn cache(cmd: CacheCommand) -> Result<ExitCode> {
    match cmd {
        CacheCommand::Compact { cache } => {
            let c = headstart_cache::Cache::open(&cache)?;
            let s = c.compact(headstart_cache::RunInfo::default(), &|m| {
                eprintln!("headstart: {m}")
            })?;
            if s.files_removed == 0 && s.dropped_rows == 0 {
                println!(
                    "{}: nothing to compact ({} live rows, no dead rows)",
                    cache.display(),
                    s.live_rows
                );
            } else {
                println!(
                    "{}: kept {} live rows, dropped {} dead rows, removed {} files",
                    cache.display(),
                    s.live_rows,
                    s.dropped_rows,
                    s.files_removed
                );
            }
        }
        CacheCommand::Info { cache } => {
            let c = headstart_cache::Cache::open(&cache)?;
            let idx = c.live_index()?;
            let i = c.info();
            println!("cache        {}", cache.display());
            println!(
                "model        {} (fingerprint {}, {}-d)",
                i.model_name, i.model_fingerprint, i.feature_dim
            );
            println!("images       {}", idx.paths.len());
            println!(
                "rows         {} live, {} dead (compact to drop)",
                idx.live_rows(),
                idx.dead_rows
            );
            println!("files        {}", idx.files);
            println!("preprocess   {}", i.preprocessing);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_comes_from_scheduler_environments() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(shard_from_env(&env(&[])).unwrap(), None);
        let s = shard_from_env(&env(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
        ]))
        .unwrap();
        assert_eq!(s, Some(Shard { index: 2, count: 4 }));
        let s = shard_from_env(&env(&[
            ("AWS_BATCH_JOB_ARRAY_INDEX", "0"),
            ("AWS_BATCH_JOB_ARRAY_SIZE", "2"),
        ]))
        .unwrap();
        assert_eq!(s, Some(Shard { index: 0, count: 2 }));
        let e = shard_from_env(&env(&[("JOB_COMPLETION_INDEX", "1")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("HEADSTART_SHARD_COUNT"), "{e}");
        let s = shard_from_env(&env(&[
            ("JOB_COMPLETION_INDEX", "1"),
            ("HEADSTART_SHARD_COUNT", "3"),
        ]))
        .unwrap();
        assert_eq!(s, Some(Shard { index: 1, count: 3 }));
    }
}

//! `headstart cache compact` and `headstart cache info`.

use std::process::ExitCode;

use anyhow::Result;
use headstart_cache::{Cache, RunInfo};

use crate::cli::CacheCommand;

pub fn run(cmd: CacheCommand) -> Result<ExitCode> {
    match cmd {
        CacheCommand::Compact { cache } => {
            let c = Cache::open(&cache)?;
            let s = c.compact(RunInfo::default(), &|m| eprintln!("headstart: {m}"))?;
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
            let c = Cache::open(&cache)?;
            let idx = c.live_index()?;
            let i = c.info();
            println!("cache        {}", cache.display());
            println!(
                "model        {} (fingerprint {}, {}-d)",
                i.model_name, i.model_fingerprint, i.feature_dim
            );
            println!("images       {}", idx.paths().count());
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

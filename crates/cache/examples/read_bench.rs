//! Reads caches as `fit` does and says how long it took: `cargo run --release
//! -p headstart-cache --example read_bench -- CACHE...` (peak RSS with /usr/bin/time -v).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let caches: Vec<std::path::PathBuf> = std::env::args().skip(1).map(Into::into).collect();
    let t0 = std::time::Instant::now();
    let t = headstart_cache::read_features(&caches)?;
    let read = t0.elapsed().as_secs_f64();
    let (rows, dim) = (t.len(), t.dim);
    if std::env::var_os("READ_ONLY").is_some() {
        println!("{rows} rows x {dim}: read {read:.2} s");
        return Ok(());
    }
    let batch = t.into_record_batch()?;
    println!(
        "{rows} rows x {dim}: read {read:.2} s, as Arrow {:.2} s, {:.2} GB in memory",
        t0.elapsed().as_secs_f64() - read,
        batch.get_array_memory_size() as f64 / 1e9
    );
    Ok(())
}

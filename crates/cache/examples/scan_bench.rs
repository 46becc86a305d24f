fn main() -> Result<(), Box<dyn std::error::Error>> {
    let c = headstart_cache::Cache::open(std::path::Path::new(&std::env::args().nth(1).unwrap()))?;
    let t0 = std::time::Instant::now();
    let idx = c.live_index()?;
    println!(
        "scan {:.2} s, {} live",
        t0.elapsed().as_secs_f64(),
        idx.live_rows()
    );
    Ok(())
}

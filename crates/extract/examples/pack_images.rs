//! Packs a class-folder tree of images into WebDataset tar shards and into
//! Hugging Face style image Parquet, for `scripts/bench_containers.sh`:
//!
//! ```text
//! cargo run --release -p headstart-extract --example pack_images -- SRC TARS_DIR PARQUET_DIR [PER_FILE=1000]
//! ```
//!
//! Tar samples: `<class>/<stem>.<ext>` plus `<class>/<stem>.cls` holding the
//! class name. Parquet: `image: struct<bytes, path>`, `label: string`, row
//! groups of 100 rows (as `datasets` writes images).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, BinaryArray, RecordBatch, StringArray, StructArray};
use arrow_schema::{DataType, Field};

fn images(src: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = walkdir::WalkDir::new(src)
        .into_iter()
        .flatten()
        .map(walkdir::DirEntry::into_path)
        .filter(|p| {
            p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                headstart_extract::input::IMAGE_EXTENSIONS
                    .contains(&e.to_ascii_lowercase().as_str())
            })
        })
        .map(|p| {
            (
                p.strip_prefix(src)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned(),
                p,
            )
        })
        .collect();
    out.sort();
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [src, tars, pq] =
        [0, 1, 2].map(|i| PathBuf::from(args.get(i).cloned().unwrap_or_default()));
    let per_file: usize = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(1000);
    let files = images(&src);
    std::fs::create_dir_all(&tars)?;
    std::fs::create_dir_all(&pq)?;
    let n_files = files.len().div_ceil(per_file);
    for (n, chunk) in files.chunks(per_file).enumerate() {
        let mut b = tar::Builder::new(File::create(tars.join(format!("{n:05}.tar")))?);
        let mut rows: Vec<(String, Vec<u8>, String)> = Vec::new();
        for (rel, path) in chunk {
            let bytes = std::fs::read(path)?;
            let class = rel.split('/').rev().nth(1).unwrap_or("").to_string();
            let key = rel.rsplit_once('.').map_or(rel.as_str(), |(k, _)| k);
            for (name, data) in [
                (rel.clone(), bytes.as_slice()),
                (format!("{key}.cls"), class.as_bytes()),
            ] {
                let mut h = tar::Header::new_gnu();
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                h.set_cksum();
                b.append_data(&mut h, name, data)?;
            }
            rows.push((rel.clone(), bytes, class));
        }
        b.finish()?;
        let bytes: ArrayRef = Arc::new(BinaryArray::from_iter_values(rows.iter().map(|r| &r.1)));
        let paths: ArrayRef = Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.0)));
        let image = StructArray::from(vec![
            (Arc::new(Field::new("bytes", DataType::Binary, true)), bytes),
            (Arc::new(Field::new("path", DataType::Utf8, true)), paths),
        ]);
        let labels: ArrayRef = Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.2)));
        let batch = RecordBatch::try_from_iter([
            ("image", Arc::new(image) as ArrayRef),
            ("label", labels),
        ])?;
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(100))
            .build();
        let name = format!("images-{n:05}-of-{n_files:05}.parquet");
        let mut w = parquet::arrow::ArrowWriter::try_new(
            File::create(pq.join(name))?,
            batch.schema(),
            Some(props),
        )?;
        w.write(&batch)?;
        w.close()?;
    }
    println!(
        "packed {} images into {n_files} tar shard(s) and {n_files} Parquet file(s)",
        files.len()
    );
    Ok(())
}

use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::column::reader::ColumnReader;
use parquet::file::reader::{FileReader, SerializedFileReader};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let p = std::env::args().nth(1).unwrap();
    let t0 = std::time::Instant::now();
    let b = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&p)?)?;
    let mask = ProjectionMask::columns(b.parquet_schema(), ["feature"]);
    let mut n = 0;
    for batch in b.with_projection(mask).with_batch_size(8192).build()? {
        n += batch?.num_rows();
    }
    println!(
        "arrow feature only: {n} rows {:.3} s",
        t0.elapsed().as_secs_f64()
    );
    let t0 = std::time::Instant::now();
    let b = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&p)?)?;
    let mut n = 0;
    for batch in b.with_batch_size(8192).build()? {
        n += batch?.num_rows();
    }
    println!(
        "arrow all columns: {n} rows {:.3} s",
        t0.elapsed().as_secs_f64()
    );
    let t0 = std::time::Instant::now();
    let r = SerializedFileReader::new(std::fs::File::open(&p)?)?;
    let col = r
        .metadata()
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.path().string() == "feature.list.item")
        .unwrap();
    let mut total = 0;
    for g in 0..r.num_row_groups() {
        let rg = r.get_row_group(g)?;
        if let ColumnReader::FloatColumnReader(mut cr) = rg.get_column_reader(col)? {
            let (mut v, mut d, mut rep) = (Vec::new(), Vec::new(), Vec::new());
            loop {
                v.clear();
                d.clear();
                rep.clear();
                let (recs, vals, _) =
                    cr.read_records(1024, Some(&mut d), Some(&mut rep), &mut v)?;
                if recs == 0 {
                    break;
                }
                total += vals;
            }
        }
    }
    println!(
        "low-level: {total} values {:.3} s",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

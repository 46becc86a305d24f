//! INPUT in object storage, in-process: object_store's in-memory store (with
//! ETags, ranges and conditional GETs) behind the same code paths as S3,
//! wrapped to count what is read. The tests against a real S3 API (a local
//! server, faults, credentials, kill -9) are the slow tier in `tests/objstore.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use futures::stream::BoxStream;
use headstart_cache::read_features;
use object_store::memory::InMemory;
use object_store::path::Path as Key;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

use crate::testing::TestModel;
use crate::{Extractor, ExtractorBuilder, NoProgress, Shard, Summary};

/// An in-memory bucket that counts GETs (not HEADs) and the bytes they return.
#[derive(Debug, Default)]
struct Counted {
    inner: InMemory,
    gets: AtomicU64,
    bytes: AtomicU64,
}

impl std::fmt::Display for Counted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Counted")
    }
}

#[async_trait]
impl ObjectStore for Counted {
    async fn put_opts(
        &self,
        location: &Key,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Key,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Key,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let head = options.head;
        let got = self.inner.get_opts(location, options).await?;
        if !head {
            self.gets.fetch_add(1, Ordering::Relaxed);
            self.bytes
                .fetch_add(got.range.end - got.range.start, Ordering::Relaxed);
        }
        Ok(got)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Key>>,
    ) -> BoxStream<'static, object_store::Result<Key>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Key>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Key>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Key,
        to: &Key,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

impl Counted {
    /// Bytes returned by GETs since the last call.
    fn take_bytes(&self) -> u64 {
        self.gets.store(0, Ordering::Relaxed);
        self.bytes.swap(0, Ordering::Relaxed)
    }

    fn add(&self, key: &str, bytes: Vec<u8>) {
        crate::remote::block_on(self.inner.put(&Key::from(key), PutPayload::from(bytes))).unwrap();
    }
}

/// A fresh bucket named `name`, reachable as `s3://<name>`.
fn bucket(name: &str) -> Arc<Counted> {
    let store = Arc::new(Counted::default());
    crate::remote::install_for_tests(name, store.clone());
    store
}

type Rows = BTreeMap<(String, String), (Option<String>, Option<String>, String, Vec<f32>)>;

fn rows(cache: &Path) -> Rows {
    let t = read_features(&[cache.to_path_buf()]).expect("read cache");
    (0..t.len())
        .map(|i| {
            (
                (t.paths[i].clone(), t.views[i].clone()),
                (
                    t.labels[i].clone(),
                    t.splits[i].clone(),
                    t.content_hashes[i].clone(),
                    t.row(i).to_vec(),
                ),
            )
        })
        .collect()
}

/// `(class/file name, bytes)` of `per_class` sample images of three classes.
fn samples(per_class: usize) -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist-mini/train");
    let mut out = Vec::new();
    for class in ["bag", "coat", "sneaker"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(class))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files.into_iter().take(per_class) {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            out.push((format!("{class}/{name}"), std::fs::read(&f).unwrap()));
        }
    }
    out
}

fn builder(input: impl Into<PathBuf>, cache: &Path) -> ExtractorBuilder {
    Extractor::builder(input, cache).batch_size(4)
}

fn run(b: ExtractorBuilder) -> Summary {
    b.build()
        .expect("valid settings")
        .run(&mut TestModel::new(16, 6), &NoProgress)
        .expect("extract")
}

/// Regression guard for #23 items 1 and 3: class folders in a bucket give the
/// features of the same files on disk, and a rerun reads no object at all.
#[test]
fn class_folders_in_a_bucket_equal_the_files_and_a_rerun_reads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (local, b) = (dir.path().join("photos"), bucket("folders-bkt"));
    for (rel, bytes) in samples(3) {
        std::fs::create_dir_all(local.join(&rel).parent().unwrap()).unwrap();
        std::fs::write(local.join(&rel), &bytes).unwrap();
        b.add(&format!("photos/{rel}"), bytes);
    }
    let (c_local, c_remote) = (dir.path().join("c1"), dir.path().join("c2"));
    run(builder(&local, &c_local));
    b.take_bytes();
    let s = run(builder("s3://folders-bkt/photos/", &c_remote));
    assert_eq!((s.extracted, s.failed), (9, 0));
    assert_eq!(rows(&c_local), rows(&c_remote));
    assert!(b.take_bytes() > 0);
    let again = run(builder("s3://folders-bkt/photos", &c_remote));
    assert_eq!((again.extracted, again.cached), (0, 9));
    assert_eq!(b.take_bytes(), 0, "a rerun downloads nothing");
    let recorded = std::fs::read_to_string(c_remote.join("input.json")).unwrap();
    assert!(recorded.contains("s3://folders-bkt/photos"), "{recorded}");
}

/// An object replaced by other content is read again and re-extracted alone;
/// one removed from the bucket leaves the cache.
#[test]
fn a_changed_object_is_read_and_extracted_alone() {
    let dir = tempfile::tempdir().unwrap();
    let b = bucket("changed-bkt");
    let all = samples(2);
    for (rel, bytes) in &all {
        b.add(&format!("p/{rel}"), bytes.clone());
    }
    let cache = dir.path().join("c");
    run(builder("s3://changed-bkt/p", &cache));
    let (changed, other) = (&all[0], &all[5]);
    b.add(&format!("p/{}", changed.0), other.1.clone());
    crate::remote::block_on(b.inner.delete(&Key::from(format!("p/{}", all[3].0)))).unwrap();
    b.take_bytes();
    let s = run(builder("s3://changed-bkt/p", &cache));
    assert_eq!((s.extracted, s.cached, s.deleted), (1, 4, 1));
    assert_eq!(
        b.take_bytes(),
        other.1.len() as u64,
        "only the changed object"
    );
    let r = rows(&cache);
    let key = (changed.0.clone(), "original".to_string());
    assert_eq!(r[&key].2, crate::pipeline::content_hash(&other.1));
}

fn tar_of(samples: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (rel, bytes) in samples {
        let (class, name) = rel.split_once('/').unwrap();
        let stem = name.split('.').next().unwrap();
        for (member, data) in [
            (format!("{stem}.png"), bytes.as_slice()),
            (format!("{stem}.cls"), class.as_bytes()),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append_data(&mut h, member, data).unwrap();
        }
    }
    b.into_inner().unwrap()
}

/// Regression guard for #23 items 1-3: tar shards in a bucket (a pattern)
/// give the features of the same shards on disk; members are read in runs by
/// range; the listing is kept with the cache, so a rerun reads nothing; a
/// shard of the run reads only its own tar objects.
#[test]
fn tar_shards_in_a_bucket_equal_the_shards_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let b = bucket("tar-bkt");
    let all = samples(4);
    let local = dir.path().join("shards");
    std::fs::create_dir_all(&local).unwrap();
    let mut total = 0;
    for (i, chunk) in all.chunks(5).enumerate() {
        let bytes = tar_of(chunk);
        total += bytes.len() as u64;
        std::fs::write(local.join(format!("{i:05}.tar")), &bytes).unwrap();
        b.add(&format!("wds/{i:05}.tar"), bytes);
    }
    let (c_local, c_remote) = (dir.path().join("c1"), dir.path().join("c2"));
    run(builder(local.join("{00000..00002}.tar"), &c_local));
    b.take_bytes();
    let s = run(builder("s3://tar-bkt/wds/{00000..00002}.tar", &c_remote));
    assert_eq!((s.extracted, s.failed), (12, 0));
    assert_eq!(rows(&c_local), rows(&c_remote));
    let first = b.take_bytes();
    assert!(
        first <= 2 * total,
        "listing and members: {first} of {total}"
    );
    assert!(c_remote.join("listings").read_dir().unwrap().count() == 3);
    let again = run(builder("s3://tar-bkt/wds/{00000..00002}.tar", &c_remote));
    assert_eq!((again.extracted, again.cached), (0, 12));
    assert_eq!(b.take_bytes(), 0, "stored listings: no shard is read again");

    // Shards of a run: each reads its own tar objects; together, all of them.
    let mut seen = 0;
    for index in 0..2 {
        let cache = dir.path().join(format!("shard{index}"));
        let s = run(builder("s3://tar-bkt/wds/", &cache).shard(Some(Shard { index, count: 2 })));
        seen += s.extracted;
        for (path, _) in rows(&cache).keys() {
            assert!(Shard { index, count: 2 }.owns(path));
        }
    }
    assert_eq!(seen, 12);
}

fn parquet_of(samples: &[(String, Vec<u8>)], group: usize) -> Vec<u8> {
    use arrow_array::{ArrayRef, BinaryArray, RecordBatch, StringArray};
    let image: ArrayRef = Arc::new(BinaryArray::from_iter_values(
        samples.iter().map(|s| s.1.as_slice()),
    ));
    let label: ArrayRef = Arc::new(StringArray::from_iter_values(
        samples.iter().map(|s| s.0.split('/').next().unwrap()),
    ));
    let batch = RecordBatch::try_from_iter([("image", image), ("label", label)]).unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(group))
        .build();
    let mut out = Vec::new();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    out
}

/// Regression guard for #23 items 1-3: image Parquet in a bucket gives the
/// features of the same file on disk, read a row group at a time by range;
/// a rerun reads nothing.
#[test]
fn image_parquet_in_a_bucket_equals_the_file_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let b = bucket("pq-bkt");
    let bytes = parquet_of(&samples(3), 4);
    let local = dir.path().join("train-00000-of-00001.parquet");
    std::fs::write(&local, &bytes).unwrap();
    b.add("hf/train-00000-of-00001.parquet", bytes.clone());
    let (c_local, c_remote) = (dir.path().join("c1"), dir.path().join("c2"));
    run(builder(&local, &c_local));
    b.take_bytes();
    let s = run(builder("s3://pq-bkt/hf/", &c_remote));
    assert_eq!((s.extracted, s.failed), (9, 0));
    assert_eq!(rows(&c_local), rows(&c_remote));
    assert!(b.take_bytes() > 0);
    let again = run(builder("s3://pq-bkt/hf/", &c_remote));
    assert_eq!((again.extracted, again.cached), (0, 9));
    assert_eq!(b.take_bytes(), 0);
}

/// A manifest in a bucket names keys relative to itself; a manifest on disk
/// names objects by URL. Both read like files; on a rerun each object is
/// asked for only if its ETag changed (a conditional GET: no bytes).
#[test]
fn manifests_of_keys_and_urls_and_their_reruns() {
    let dir = tempfile::tempdir().unwrap();
    let b = bucket("man-bkt");
    let all = samples(2);
    let mut csv = String::from("path,label\n");
    let mut urls = String::from("path,label\n");
    for (rel, bytes) in &all {
        b.add(&format!("data/img/{rel}"), bytes.clone());
        let class = rel.split('/').next().unwrap();
        csv.push_str(&format!("img/{rel},{class}\n"));
        urls.push_str(&format!("s3://man-bkt/data/img/{rel},{class}\n"));
    }
    csv.push_str("img/missing.png,bag\n");
    b.add("data/train.csv", csv.into_bytes());
    let local = dir.path().join("urls.csv");
    std::fs::write(&local, urls).unwrap();

    let c1 = dir.path().join("c1");
    let s = run(builder("s3://man-bkt/data/train.csv", &c1));
    assert_eq!((s.extracted, s.failed), (6, 1));
    let errors = headstart_cache::read_errors(s.errors_file.as_ref().unwrap()).unwrap();
    assert_eq!(errors[0].path, "img/missing.png");
    assert!(
        errors[0]
            .message
            .contains("s3://man-bkt/data/img/missing.png")
            && errors[0].message.contains("no such object"),
        "{errors:?}"
    );
    let c2 = dir.path().join("c2");
    let s = run(builder(&local, &c2));
    assert_eq!((s.extracted, s.failed), (6, 0));
    let features = |c: &Path| -> Vec<Vec<f32>> { rows(c).into_values().map(|v| v.3).collect() };
    assert_eq!(features(&c1)[..], features(&c2)[..]);

    let manifest_len = b.take_bytes();
    assert!(manifest_len > 0);
    let again = run(builder(&local, &c2));
    assert_eq!((again.extracted, again.cached), (0, 6));
    assert_eq!(b.take_bytes(), 0, "conditional GETs: nothing sent");
}

/// Objects over the size limit are error rows, refused from their listed
/// size before any byte is read.
#[test]
fn objects_over_the_limit_are_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let b = bucket("big-bkt");
    for (rel, bytes) in samples(1) {
        b.add(&format!("p/{rel}"), bytes);
    }
    b.add("p/bag/huge.png", vec![0u8; 4096]);
    b.take_bytes();
    let s = run(builder("s3://big-bkt/p", &dir.path().join("c")).max_file_size(2000));
    assert_eq!((s.extracted, s.failed), (3, 1));
    let errors = headstart_cache::read_errors(s.errors_file.as_ref().unwrap()).unwrap();
    assert!(errors[0].message.contains("too large"), "{errors:?}");
    let read = b.take_bytes();
    assert!(read < 3 * 2000, "{read}");
}

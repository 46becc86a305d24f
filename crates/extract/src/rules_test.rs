//! The pipeline's rules, in-process on [`TestModel`]: what a rerun does with
//! added, changed, deleted and relabelled files, refusals, NaN features,
//! `--strict`, and shards. The golden tests on the real backbone are the
//! end-to-end tests in `tests/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use headstart_cache::{Cache, read_features};

use crate::pipeline::content_hash;
use crate::tensor::Preprocessor;
use crate::testing::TestModel;
use crate::{
    ExtractError, Extractor, ExtractorBuilder, FeatureModel, NoProgress, Shard, Summary, View,
};

/// (label, split, content hash, feature) by (path, view).
type Rows = BTreeMap<(String, String), (Option<String>, Option<String>, String, Vec<f32>)>;

fn rows(cache: &Path) -> Rows {
    let t = read_features(&[cache.to_path_buf()]).expect("read cache");
    let mut m = Rows::new();
    for i in 0..t.len() {
        let key = (t.paths[i].clone(), t.views[i].clone());
        let v = (
            t.labels[i].clone(),
            t.splits[i].clone(),
            t.content_hashes[i].clone(),
            t.row(i).to_vec(),
        );
        assert!(m.insert(key.clone(), v).is_none(), "{key:?} is live twice");
    }
    m
}

fn sample(split: &str, class: &str, k: usize) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/fashion-mnist-mini")
        .join(split)
        .join(class);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v[k].clone()
}

const CLASSES: [&str; 4] = ["bag", "coat", "dress", "sneaker"];

/// `per_class` sample training images of each of [`CLASSES`] in `dst/<class>/`.
fn class_folders(dst: &Path, per_class: usize) {
    for c in CLASSES {
        std::fs::create_dir_all(dst.join(c)).unwrap();
        for k in 0..per_class {
            let src = sample("train", c, k);
            std::fs::copy(&src, dst.join(c).join(src.file_name().unwrap())).unwrap();
        }
    }
}

fn builder(input: &Path, cache: &Path) -> ExtractorBuilder {
    Extractor::builder(input, cache).batch_size(3)
}

fn run(b: ExtractorBuilder, model: &mut dyn FeatureModel) -> Result<Summary, ExtractError> {
    b.build().expect("valid settings").run(model, &NoProgress)
}

fn counts(s: &Summary) -> (usize, usize, usize, usize) {
    (s.extracted, s.cached, s.failed, s.deleted)
}

/// Stored features are the model on the preprocessed tensor (and on the
/// mirrored tensor for `hflip`), with the file's content hash and class label.
#[test]
fn features_are_the_model_on_each_views_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let (input, cache) = (dir.path().join("in"), dir.path().join("cache"));
    class_folders(&input, 1);
    let mut model = TestModel::new(12, 5);
    let s = run(
        builder(&input, &cache).views(vec![View::Original, View::Hflip]),
        &mut model,
    )
    .unwrap();
    assert_eq!((s.extracted, s.rows_written, s.feature_dim), (4, 8, 5));
    let stored = rows(&cache);
    let pre = model.preprocess().clone();
    let mut prep = Preprocessor::new(pre.clone());
    for c in CLASSES {
        let file = sample("train", c, 0);
        let rel = format!("{c}/{}", file.file_name().unwrap().to_string_lossy());
        let bytes = std::fs::read(&file).unwrap();
        let img = crate::decode::decode_rgb8(&bytes).unwrap();
        let mut t = vec![0f32; pre.tensor_len()];
        prep.tensor_into(&img, &mut t).unwrap();
        let original = model.features_of(&t);
        for row in t.chunks_exact_mut(pre.width as usize) {
            row.reverse(); // NCHW: each row of each channel
        }
        let flipped = model.features_of(&t);
        assert_ne!(original, flipped, "{rel}: the flip must matter");
        let o = &stored[&(rel.clone(), "original".into())];
        let f = &stored[&(rel.clone(), "hflip".into())];
        assert_eq!((o.0.as_deref(), o.1.as_deref()), (Some(c), None));
        assert_eq!(o.2, content_hash(&bytes));
        assert_eq!((&o.3, &f.3), (&original, &flipped), "{rel}");
    }
}

/// Reruns do no inference; an added file is extracted alone, a changed one
/// supersedes its row, a deleted one is tombstoned; compaction keeps the live rows.
#[test]
fn reruns_do_only_new_work_and_compaction_keeps_the_live_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (input, cache) = (dir.path().join("in"), dir.path().join("cache"));
    class_folders(&input, 2);
    let mut model = TestModel::new(8, 3);
    assert_eq!(
        counts(&run(builder(&input, &cache), &mut model).unwrap()),
        (8, 0, 0, 0)
    );
    let s = run(builder(&input, &cache), &mut model).unwrap();
    assert_eq!((counts(&s), s.rows_written), ((0, 8, 0, 0), 0));
    assert_eq!(model.images_run, 8, "a rerun ran the model");

    std::fs::copy(sample("train", "bag", 5), input.join("bag/added.png")).unwrap();
    assert_eq!(
        counts(&run(builder(&input, &cache), &mut model).unwrap()),
        (1, 8, 0, 0)
    );

    let coat = sample("train", "coat", 0);
    let coat_rel = format!("coat/{}", coat.file_name().unwrap().to_string_lossy());
    let old = rows(&cache)[&(coat_rel.clone(), "original".into())].clone();
    let new_bytes = std::fs::read(sample("test", "coat", 0)).unwrap();
    std::fs::write(input.join(&coat_rel), &new_bytes).unwrap();
    assert_eq!(
        counts(&run(builder(&input, &cache), &mut model).unwrap()),
        (1, 8, 0, 0)
    );
    let now = rows(&cache);
    let coat_rows: Vec<_> = now.iter().filter(|((p, _), _)| *p == coat_rel).collect();
    assert_eq!(coat_rows.len(), 1);
    assert_eq!(coat_rows[0].1.2, content_hash(&new_bytes));
    assert_ne!(coat_rows[0].1.3, old.3);

    let dress = sample("train", "dress", 0);
    let dress_rel = format!("dress/{}", dress.file_name().unwrap().to_string_lossy());
    std::fs::remove_file(input.join(&dress_rel)).unwrap();
    assert_eq!(
        counts(&run(builder(&input, &cache), &mut model).unwrap()),
        (0, 8, 0, 1)
    );
    let live = rows(&cache);
    assert_eq!(live.len(), 8);
    assert!(!live.keys().any(|(p, _)| *p == dress_rel));

    let c = Cache::open(&cache).unwrap();
    let idx = c.live_index().unwrap();
    assert_eq!((idx.live_rows(), idx.dead_rows), (8, 2));
    let stats = c.compact(Default::default(), &|_| {}).unwrap();
    assert_eq!((stats.live_rows, stats.dropped_rows), (8, 2));
    assert_eq!(rows(&cache), live);
    assert_eq!(
        counts(&run(builder(&input, &cache), &mut model).unwrap()),
        (0, 8, 0, 0)
    );
}

/// Regression: another dataset extracted into a cache marked every image in it
/// deleted. That is refused unless `prune` says so.
#[test]
fn another_input_is_refused_unless_pruning() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second, cache) = (
        dir.path().join("first"),
        dir.path().join("second"),
        dir.path().join("cache"),
    );
    class_folders(&first, 1);
    std::fs::create_dir_all(second.join("other")).unwrap();
    std::fs::copy(sample("test", "bag", 0), second.join("other/x.png")).unwrap();
    let mut model = TestModel::new(8, 3);
    run(builder(&first, &cache), &mut model).unwrap();
    let e = run(builder(&second, &cache), &mut model).unwrap_err();
    assert!(
        matches!(e, ExtractError::DifferentInput { live: 4, .. }),
        "{e}"
    );
    assert_eq!(rows(&cache).len(), 4, "the refused run changed the cache");
    let s = run(builder(&second, &cache).prune(true), &mut model).unwrap();
    assert_eq!((s.extracted, s.deleted), (1, 4));
    let paths: Vec<String> = rows(&cache).into_keys().map(|(p, _)| p).collect();
    assert_eq!(paths, ["other/x.png"]);
}

/// A model with another fingerprint never writes into a cache.
#[test]
fn another_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (input, cache) = (dir.path().join("in"), dir.path().join("cache"));
    class_folders(&input, 1);
    run(builder(&input, &cache), &mut TestModel::new(8, 3)).unwrap();
    let e = run(builder(&input, &cache), &mut TestModel::new(10, 3))
        .unwrap_err()
        .to_string();
    assert!(e.contains("test-projection-8px-3d"), "{e}");
    assert_eq!(rows(&cache).len(), 4);
}

/// An image the model gives NaN features fails (stage `infer`) without failing
/// the run, and rows from before its content changed stop being live, also
/// when only some of its views are new.
#[test]
fn nan_features_fail_that_image_and_retire_its_old_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (input, cache) = (dir.path().join("in"), dir.path().join("cache"));
    class_folders(&input, 1);
    let dark = format!(
        "coat/{}",
        sample("train", "coat", 0)
            .file_name()
            .unwrap()
            .to_string_lossy()
    );
    run(builder(&input, &cache), &mut TestModel::new(8, 3)).unwrap();
    // Its bytes change to an image this model gives NaN features for.
    let black = image::RgbImage::from_pixel(20, 20, image::Rgb([0, 0, 0]));
    black.save(input.join(&dark)).unwrap();
    let poisoned = || TestModel::new(8, 3).nan_when(|t| t.iter().all(|&v| v < -1.5));
    for (views, extracted, cached) in [
        (vec![View::Original], 0, 3),
        (vec![View::Original, View::Hflip], 3, 0),
    ] {
        let s = run(
            builder(&input, &cache).views(views.clone()),
            &mut poisoned(),
        )
        .unwrap();
        assert_eq!(counts(&s), (extracted, cached, 1, 0), "{views:?}");
        let errors = read_errors(s.errors_file.as_deref().expect("errors file"));
        assert_eq!(errors.len(), 1);
        assert_eq!(
            (errors[0].0.as_str(), errors[0].1.as_str()),
            (dark.as_str(), "infer")
        );
        assert!(
            errors[0].2.contains("NaN or infinite features"),
            "{errors:?}"
        );
        let live = rows(&cache);
        assert!(
            !live.keys().any(|(p, _)| *p == dark),
            "{views:?}: old row still live"
        );
        assert_eq!(live.len(), 3 * views.len());
    }
}

/// (path, stage, message) rows of an errors file.
fn read_errors(path: &Path) -> Vec<(String, String, String)> {
    let rows = headstart_cache::read_errors(path).expect("errors file");
    rows.into_iter()
        .map(|r| (r.path, r.stage, r.message))
        .collect()
}

/// Bad files get error rows and the rest is extracted; `strict` stops at the
/// first failure, and a file that was extracted and then broke stops being
/// served either way.
#[test]
fn bad_files_are_recorded_and_strict_stops() {
    let dir = tempfile::tempdir().unwrap();
    let (input, cache) = (dir.path().join("in"), dir.path().join("cache"));
    class_folders(&input, 1);
    let bad = input.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("empty.png"), b"").unwrap();
    std::fs::write(bad.join("text.jpg"), b"not an image\n").unwrap();
    let mut model = TestModel::new(8, 3);
    let s = run(builder(&input, &cache), &mut model).unwrap();
    assert_eq!(counts(&s), (4, 0, 2, 0));
    let mut errors = read_errors(s.errors_file.as_deref().unwrap());
    errors.sort();
    let stages: Vec<(&str, &str)> = errors
        .iter()
        .map(|(p, s, _)| (p.as_str(), s.as_str()))
        .collect();
    assert_eq!(
        stages,
        [("bad/empty.png", "decode"), ("bad/text.jpg", "decode")]
    );

    let e = run(
        builder(&input, &dir.path().join("strict")).strict(true),
        &mut model,
    )
    .unwrap_err();
    assert!(
        matches!(&e, ExtractError::Strict { path, stage, .. } if path.starts_with("bad/") && stage == "decode"),
        "{e}"
    );

    std::fs::remove_dir_all(&bad).unwrap();
    let broken = format!(
        "dress/{}",
        sample("train", "dress", 0)
            .file_name()
            .unwrap()
            .to_string_lossy()
    );
    std::fs::write(input.join(&broken), b"not a png any more").unwrap();
    let e = run(builder(&input, &cache).strict(true), &mut model).unwrap_err();
    assert!(
        matches!(&e, ExtractError::Strict { path, .. } if *path == broken),
        "{e}"
    );
    assert_eq!(
        rows(&cache).len(),
        3,
        "the broken file's features are still served"
    );
    let s = run(builder(&input, &cache), &mut model).unwrap();
    assert_eq!(counts(&s), (0, 3, 1, 0));
}

/// Regression: a rerun after a manifest changed only labels or splits kept the
/// old ones. Rows are rewritten with the new labels and splits.
#[test]
fn relabelled_files_are_rewritten_on_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("lists");
    std::fs::create_dir_all(m.join("imgs")).unwrap();
    std::fs::copy(sample("train", "bag", 0), m.join("imgs/a.png")).unwrap();
    std::fs::copy(sample("train", "coat", 0), m.join("imgs/b.png")).unwrap();
    let (manifest, cache) = (m.join("manifest.csv"), dir.path().join("cache"));
    let own = |s: &str| Some(s.to_string());
    let mut model = TestModel::new(8, 3);
    for (csv, extracted, want) in [
        (
            "path,label,split\nimgs/a.png,bag,train\nimgs/b.png,coat,train\n",
            2,
            [own("bag"), own("train"), own("coat"), own("train")],
        ),
        (
            "path,label,split\nimgs/a.png,bag,train\nimgs/b.png,coat,train\n",
            0,
            [own("bag"), own("train"), own("coat"), own("train")],
        ),
        (
            "path,label,split\nimgs/a.png,dress,train\nimgs/b.png,coat,test\n",
            2,
            [own("dress"), own("train"), own("coat"), own("test")],
        ),
        (
            "path\nimgs/a.png\nimgs/b.png\n",
            2,
            [None, None, None, None],
        ),
    ] {
        std::fs::write(&manifest, csv).unwrap();
        let s = run(builder(&manifest, &cache), &mut model).unwrap();
        assert_eq!((s.extracted, s.cached), (extracted, 2 - extracted), "{csv}");
        let got: Vec<_> = rows(&cache)
            .into_iter()
            .map(|((p, _), r)| (p, r.0, r.1))
            .collect();
        let [la, sa, lb, sb] = want;
        assert_eq!(
            got,
            vec![("imgs/a.png".into(), la, sa), ("imgs/b.png".into(), lb, sb)],
            "{csv}"
        );
    }
}

/// Shards of one run, written side by side into one cache, give the rows of a
/// single run; each image belongs to exactly one shard; a shard's rerun leaves
/// the other shards' rows alone.
#[test]
fn shards_together_equal_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let (input, single, sharded) = (
        dir.path().join("in"),
        dir.path().join("single"),
        dir.path().join("sharded"),
    );
    class_folders(&input, 4);
    let mut model = TestModel::new(8, 3);
    run(builder(&input, &single), &mut model).unwrap();
    let mut owned = 0;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|index| {
                let (input, sharded) = (&input, &sharded);
                s.spawn(move || {
                    let shard = Some(Shard { index, count: 3 });
                    run(
                        builder(input, sharded).shard(shard),
                        &mut TestModel::new(8, 3),
                    )
                    .unwrap()
                })
            })
            .collect();
        for h in handles {
            let s = h.join().unwrap();
            assert_eq!(s.images, s.extracted);
            owned += s.images;
        }
    });
    assert_eq!(owned, 16, "every image in exactly one shard");
    assert_eq!(rows(&sharded), rows(&single));
    let s = run(
        builder(&input, &sharded).shard(Some(Shard { index: 1, count: 3 })),
        &mut model,
    )
    .unwrap();
    assert_eq!((s.extracted, s.deleted), (0, 0));
    assert_eq!(rows(&sharded), rows(&single));
}

/// Regression (#26 item 1): a panic in a decoder (zune-jpeg's `idct/avx2.rs`
/// unwrap, reached by a 633-byte file) aborted the run with exit 101, losing
/// the other images' unflushed rows, the error rows and the tombstones, and
/// every rerun died the same way. It is now that image's error row; the run
/// finishes, and a rerun does no new work and ends the same way.
#[test]
fn a_decoder_panic_fails_its_image_only() {
    let dir = tempfile::tempdir().unwrap();
    let (input, cache) = (dir.path().join("in"), dir.path().join("cache"));
    class_folders(&input, 3);
    // The seam panics on files that end with this marker (PNG ignores it).
    let mut bytes = std::fs::read(sample("train", "bag", 5)).unwrap();
    bytes.extend_from_slice(b"PANIC-IN-DECODER");
    std::fs::write(input.join("bag/hostile.png"), &bytes).unwrap();
    crate::isolate::inject_decoder_panic(Some(|b| b.ends_with(b"PANIC-IN-DECODER")));
    let mut model = TestModel::new(16, 4);
    let first = run(builder(&input, &cache), &mut model);
    let again = run(builder(&input, &cache), &mut model);
    crate::isolate::inject_decoder_panic(None);
    let (first, again) = (first.unwrap(), again.unwrap());
    assert_eq!(counts(&first), (12, 0, 1, 0));
    assert_eq!(counts(&again), (0, 12, 1, 0));
    let errors = headstart_cache::read_errors(first.errors_file.as_ref().unwrap()).unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        (errors[0].path.as_str(), errors[0].stage.as_str()),
        ("bag/hostile.png", "decode")
    );
    assert!(
        errors[0]
            .message
            .starts_with("decoder panicked: injected decoder panic")
            && errors[0].message.contains("isolate.rs:"),
        "{}",
        errors[0].message
    );
    assert_eq!(rows(&cache).len(), 12);
}

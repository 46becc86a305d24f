//! [`Classifier`]: a saved head over its backbone, classifying image files,
//! folders and manifests, with features taken from caches where the content
//! hash is there.
//!
//! Files go in batches through the extract stages: read and hash (all
//! threads), take cached features by content hash, decode and preprocess the
//! rest (all threads), run the backbone on them, then the head on the batch.
//! The backbone opens only when some file is not cached. A file that cannot be
//! listed, read, decoded or preprocessed gives a [`Failed`](Outcome::Failed)
//! row.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use headstart_extract::input::{self, InputKind, Origin};
use headstart_extract::isolate;
use headstart_extract::pipeline::content_hash;
use headstart_extract::remote::Access;
use headstart_extract::tensor::{Preprocessor, normalize_into};
use headstart_extract::{FeatureModel, Progress};
use headstart_fit::Head;
use rayon::prelude::*;

use crate::{ModelId, ServeError};

/// Opens the backbone for a head, on first need.
pub type OpenBackbone<'a> =
    Box<dyn FnOnce(&Head) -> Result<Box<dyn FeatureModel + 'a>, ServeError> + 'a>;

/// A head ready to classify images.
pub struct Classifier<'a> {
    head: Head,
    cached: HashMap<String, Vec<f32>>,
    open: Option<OpenBackbone<'a>>,
    model: Option<Box<dyn FeatureModel + 'a>>,
    max_file_size: u64,
    access: Access,
}

/// What happened to one input, in input order.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The path as given (files inside folders joined to the folder).
    pub path: String,
    /// Class probabilities, or why there are none.
    pub outcome: Outcome,
}

/// Class probabilities of one image, or the stage that failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Probabilities in the head's class order.
    Done {
        /// One probability per class, summing to 1.
        probabilities: Vec<f32>,
        /// Whether the features came from a cache.
        cached: bool,
    },
    /// The image could not be classified.
    Failed {
        /// The stage that failed: `list`, `read`, `decode`, `preprocess`, ...
        stage: String,
        /// What went wrong.
        message: String,
    },
}

fn failed(stage: &str, message: impl Into<String>) -> Outcome {
    Outcome::Failed {
        stage: stage.into(),
        message: message.into(),
    }
}

impl<'a> Classifier<'a> {
    /// Loads the head in `head_dir`; `backbone` opens its backbone when some
    /// image is not in a cache (see [`Classifier::with_caches`]).
    pub fn open(
        head_dir: &Path,
        backbone: impl FnOnce(&Head) -> Result<Box<dyn FeatureModel + 'a>, ServeError> + 'a,
    ) -> Result<Classifier<'a>, ServeError> {
        let head = Head::load(head_dir).map_err(|source| ServeError::Head {
            dir: head_dir.to_path_buf(),
            source,
        })?;
        Ok(Classifier {
            head,
            cached: HashMap::new(),
            open: Some(Box::new(backbone)),
            model: None,
            max_file_size: headstart_files::DEFAULT_MAX_FILE_SIZE,
            access: Access::default(),
        })
    }

    /// How images in object storage (`s3://`, `gs://`, `az://`, `https://`
    /// inputs, or URLs in a manifest) are reached and read.
    pub fn with_access(mut self, access: Access) -> Result<Classifier<'a>, ServeError> {
        access.check()?;
        self.access = access;
        Ok(self)
    }

    /// Largest file read, in bytes (default
    /// [`headstart_files::DEFAULT_MAX_FILE_SIZE`]); a larger one, or one that
    /// is not a regular file (a FIFO, a device), gets a `read` error row.
    pub fn with_max_file_size(mut self, bytes: u64) -> Result<Classifier<'a>, ServeError> {
        if bytes == 0 {
            return Err(ServeError::Param {
                name: "max_file_size",
                value: "0".into(),
                message: "must be at least 1 byte".into(),
            });
        }
        self.max_file_size = bytes;
        Ok(self)
    }

    /// Takes features of images whose content is in these caches (their
    /// `original` views) instead of running the backbone. Each cache must hold
    /// features of the head's backbone.
    pub fn with_caches(mut self, caches: &[PathBuf]) -> Result<Classifier<'a>, ServeError> {
        for dir in caches {
            let cache = headstart_cache::Cache::open(dir)?;
            let info = cache.info();
            let meta = self.head.meta();
            if let Some(fp) = meta.model_fingerprint.as_deref()
                && fp != info.model_fingerprint
            {
                return Err(ServeError::CacheModel {
                    cache: dir.clone(),
                    found: Box::new(ModelId {
                        name: info.model_name.clone(),
                        fingerprint: info.model_fingerprint.clone(),
                    }),
                    head: ModelId::trained_on(&self.head, fp),
                });
            }
            if info.feature_dim != self.head.dim() {
                return Err(ServeError::CacheDim {
                    cache: dir.clone(),
                    dim: info.feature_dim,
                    head_dim: self.head.dim(),
                });
            }
            let t = cache.read()?;
            for i in 0..t.len() {
                if headstart_fit::is_original(&t.views[i]) {
                    self.cached
                        .insert(t.content_hashes[i].clone(), t.row(i).to_vec());
                }
            }
        }
        Ok(self)
    }

    /// The head.
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// Classifies image files, folders (every image below, recursively) and
    /// manifests (`.csv`, `.parquet`), on disk or in object storage (an
    /// object, a prefix, a manifest), in the order given, `batch_size` images
    /// at a time.
    pub fn predict(
        &mut self,
        inputs: &[PathBuf],
        batch_size: usize,
        progress: &dyn Progress,
    ) -> Result<Vec<Prediction>, ServeError> {
        let entries = list_inputs(inputs, &self.access)?;
        self.run(entries, batch_size, progress)
    }

    /// Classifies images held in memory, `(name, bytes)` each (the name is
    /// only shown), `batch_size` at a time; as [`Classifier::predict`] does
    /// for files, bytes over the size limit are that image's error.
    pub fn predict_bytes(
        &mut self,
        images: Vec<(String, Vec<u8>)>,
        batch_size: usize,
        progress: &dyn Progress,
    ) -> Result<Vec<Prediction>, ServeError> {
        let entries = images
            .into_iter()
            .map(|(path, bytes)| Entry {
                path,
                abs: None,
                bytes: Some(bytes),
                outcome: None,
            })
            .collect();
        self.run(entries, batch_size, progress)
    }

    fn run(
        &mut self,
        mut entries: Vec<Entry>,
        batch_size: usize,
        progress: &dyn Progress,
    ) -> Result<Vec<Prediction>, ServeError> {
        if !(1..=headstart_extract::MAX_BATCH).contains(&batch_size) {
            return Err(ServeError::Param {
                name: "batch_size",
                value: batch_size.to_string(),
                message: format!("must be between 1 and {}", headstart_extract::MAX_BATCH),
            });
        }
        progress.start(entries.len() as u64);
        let todo: Vec<usize> = (0..entries.len())
            .filter(|&i| entries[i].outcome.is_none())
            .collect();
        for batch in todo.chunks(batch_size) {
            self.classify_batch(&mut entries, batch, batch_size, progress)?;
            progress.advance(batch.len() as u64);
        }
        Ok(entries
            .into_iter()
            .map(|e| Prediction {
                path: e.path,
                outcome: e
                    .outcome
                    .unwrap_or_else(|| failed("predict", "not processed")),
            })
            .collect())
    }

    fn backbone(
        &mut self,
        batch_size: usize,
        progress: &dyn Progress,
    ) -> Result<&mut Box<dyn FeatureModel + 'a>, ServeError> {
        if self.model.is_none() {
            let open = self.open.take().ok_or_else(|| {
                ServeError::NoBackbone("the backbone could not be opened earlier".into())
            })?;
            let model = open(&self.head)?;
            if let Some(note) = model.batch_note(batch_size) {
                progress.message(&note);
            }
            self.model = Some(model);
        }
        self.model
            .as_mut()
            .ok_or_else(|| ServeError::NoBackbone("the backbone is not open".into()))
    }

    fn classify_batch(
        &mut self,
        entries: &mut [Entry],
        batch: &[usize],
        batch_size: usize,
        progress: &dyn Progress,
    ) -> Result<(), ServeError> {
        // Objects in a store: fetched side by side first.
        let remote: Vec<usize> = batch
            .iter()
            .copied()
            .filter(|&i| entries[i].bytes.is_none())
            .filter(|&i| entries[i].abs.as_ref().is_some_and(Origin::is_remote))
            .collect();
        if !remote.is_empty() {
            let objects: Vec<_> = remote
                .iter()
                .filter_map(|&i| entries[i].abs.as_ref()?.as_object().cloned())
                .collect();
            let got = headstart_extract::remote::read_objects(
                &objects,
                self.max_file_size,
                self.access.io_concurrency,
            );
            for (&i, got) in remote.iter().zip(got) {
                match got {
                    Ok(b) => entries[i].bytes = Some(b),
                    Err(e) => entries[i].outcome = Some(failed("read", e)),
                }
            }
        }
        // Read and hash; cached features need nothing more.
        let read: Vec<Read> = batch
            .par_iter()
            .map(|&i| match &entries[i].outcome {
                Some(o) => Read::Failed(o.clone()),
                None => read_one(entries_bytes(&entries[i]), &self.cached, self.max_file_size),
            })
            .collect();
        for &i in &remote {
            entries[i].bytes = None; // hashed: not held for the rest of the run
        }
        let mut features: Vec<Option<Vec<f32>>> = vec![None; batch.len()];
        let mut from_cache = vec![false; batch.len()];
        let mut to_decode = Vec::new();
        for (j, r) in read.into_iter().enumerate() {
            match r {
                Read::Cached(f) => {
                    features[j] = Some(f);
                    from_cache[j] = true;
                }
                Read::Bytes(b) => to_decode.push((j, b)),
                Read::Failed(o) => entries[batch[j]].outcome = Some(o),
            }
        }
        if !to_decode.is_empty() {
            let head_dim = self.head.dim();
            let net = self.backbone(batch_size, progress)?;
            let pre = net.preprocess().clone();
            let tensors: Vec<Result<Vec<f32>, Outcome>> = to_decode
                .par_iter()
                .map_init(
                    || (Preprocessor::new(pre.clone()), Vec::new()),
                    |(prep, buf), (_, bytes)| {
                        let img = isolate::decode(bytes, buf, &pre)
                            .map_err(|e| failed("decode", e.to_string()))?;
                        let img = &img;
                        let pixels = isolate::guarded(move || prep.resize_u8(img))
                            .map_err(|p| {
                                failed("preprocess", format!("preprocessing panicked: {p}"))
                            })?
                            .map_err(|e| failed("preprocess", e.to_string()))?;
                        let mut t = vec![0f32; pre.tensor_len()];
                        normalize_into(&pre, pixels, &mut t);
                        Ok(t)
                    },
                )
                .collect();
            let mut input = Vec::new();
            let mut rows = Vec::new();
            for ((j, _), t) in to_decode.iter().zip(tensors) {
                match t {
                    Ok(t) => {
                        input.extend_from_slice(&t);
                        rows.push(*j);
                    }
                    Err(o) => entries[batch[*j]].outcome = Some(o),
                }
            }
            if !rows.is_empty() {
                let out = net.run(&input, rows.len())?;
                let dim = out.len() / rows.len();
                if dim != head_dim {
                    return Err(ServeError::BackboneDim {
                        model: net.name().to_string(),
                        tensor: net.feature_tensor().to_string(),
                        dim,
                        head_dim,
                    });
                }
                for (r, j) in rows.iter().enumerate() {
                    features[*j] = Some(out[r * dim..(r + 1) * dim].to_vec());
                }
            }
        }
        // The head, on every row with finite features.
        let mut x = Vec::new();
        let mut rows = Vec::new();
        for (j, f) in features.iter().enumerate() {
            let Some(f) = f else { continue };
            if f.iter().any(|v| !v.is_finite()) {
                entries[batch[j]].outcome = Some(failed(
                    "infer",
                    "the model produced NaN or infinite features",
                ));
                continue;
            }
            x.extend_from_slice(f);
            rows.push(j);
        }
        let probs = self.head.try_predict_proba(&x, rows.len())?;
        let k = self.head.n_classes();
        for (r, j) in rows.iter().enumerate() {
            entries[batch[*j]].outcome = Some(Outcome::Done {
                probabilities: probs[r * k..(r + 1) * k].to_vec(),
                cached: from_cache[*j],
            });
        }
        Ok(())
    }
}

/// One file to classify, or a listing failure, in output order.
struct Entry {
    /// As shown in the output.
    path: String,
    /// Where to read it; `None` for listing failures and images in memory.
    abs: Option<Origin>,
    /// The image, when it was given in memory.
    bytes: Option<Vec<u8>>,
    outcome: Option<Outcome>,
}

/// Image files, folders (every image below, recursively) and manifests, in the
/// order given; folders and manifests in path order. The same in object
/// storage: an image object, a prefix, a manifest.
fn list_inputs(inputs: &[PathBuf], access: &Access) -> Result<Vec<Entry>, ServeError> {
    let mut out = Vec::new();
    for input in inputs {
        let shown = input::shown(input);
        let failure = |stage: &str, message: String| Entry {
            path: shown.clone(),
            abs: None,
            bytes: None,
            outcome: Some(failed(stage, message)),
        };
        let ext = input
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let manifest = matches!(ext.as_deref(), Some("csv" | "parquet"));
        let (kind, under) = match input::remote_url(input, access) {
            Err(e) => {
                out.push(failure("list", e.to_string()));
                continue;
            }
            Ok(Some(url)) => {
                if manifest {
                    (InputKind::Manifest, None)
                } else if input::is_image_name(&url.key) {
                    out.push(Entry {
                        path: shown,
                        abs: Some(Origin::Object(std::sync::Arc::new(url.object()))),
                        bytes: None,
                        outcome: None,
                    });
                    continue;
                } else {
                    (InputKind::Unlabeled, Some(url.shown()))
                }
            }
            Ok(None) => {
                let meta = match std::fs::metadata(input) {
                    Ok(m) => m,
                    Err(e) => {
                        out.push(failure("read", e.to_string()));
                        continue;
                    }
                };
                if meta.is_dir() {
                    (InputKind::Unlabeled, Some(input.display().to_string()))
                } else if manifest {
                    (InputKind::Manifest, None)
                } else {
                    out.push(Entry {
                        path: shown,
                        abs: Some(Origin::File(input.clone())),
                        bytes: None,
                        outcome: None,
                    });
                    continue;
                }
            }
        };
        let options = input::ListOptions {
            access: access.clone(),
            ..input::ListOptions::default()
        };
        let listing = match input::list_with(input, kind, &options) {
            Ok(l) => l,
            Err(e) if kind == InputKind::Unlabeled => {
                out.push(failure("list", e.to_string()));
                continue;
            }
            Err(source) => {
                return Err(ServeError::Manifest {
                    path: PathBuf::from(shown),
                    source: Box::new(source),
                });
            }
        };
        let show = |rel: &str| match &under {
            Some(dir) => Path::new(dir).join(rel).display().to_string(),
            None => rel.to_string(),
        };
        for e in listing.errors {
            out.push(Entry {
                path: show(&e.path),
                abs: None,
                bytes: None,
                outcome: Some(failed(&e.stage, e.message)),
            });
        }
        for it in listing.items {
            out.push(Entry {
                path: show(&it.rel),
                abs: Some(it.abs),
                bytes: None,
                outcome: None,
            });
        }
    }
    Ok(out)
}

enum Read {
    Cached(Vec<f32>),
    Bytes(Vec<u8>),
    Failed(Outcome),
}

/// Where an entry's bytes are.
enum Bytes<'e> {
    File(&'e Path),
    Memory(&'e [u8]),
    Nothing,
}

fn entries_bytes(e: &Entry) -> Bytes<'_> {
    match (&e.bytes, &e.abs) {
        (Some(b), _) => Bytes::Memory(b),
        (None, Some(Origin::File(p))) => Bytes::File(p),
        (None, _) => Bytes::Nothing,
    }
}

fn read_one(src: Bytes<'_>, cached: &HashMap<String, Vec<f32>>, limit: u64) -> Read {
    let bytes = match src {
        Bytes::Nothing => return Read::Failed(failed("list", "nothing to read")),
        Bytes::File(abs) => match headstart_files::read_regular(abs, limit) {
            Err(e) => return Read::Failed(failed("read", e.reason())),
            Ok(b) => b,
        },
        Bytes::Memory(b) if b.len() as u64 > limit => {
            let reason = headstart_files::ReadError::TooLarge {
                path: PathBuf::new(),
                bytes: b.len() as u64,
                limit,
            }
            .reason();
            return Read::Failed(failed("read", reason));
        }
        Bytes::Memory(b) => b.to_vec(),
    };
    match cached.get(&content_hash(&bytes)) {
        Some(f) => Read::Cached(f.clone()),
        None => Read::Bytes(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use headstart_extract::testing::TestModel;
    use headstart_extract::{Extractor, NoProgress};

    /// Regression (#26 item 1): a decoder panic on one image aborted
    /// `predict` with a backtrace; it is now that image's error row, and the
    /// other images are classified.
    #[test]
    fn a_decoder_panic_fails_its_image_only() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("images");
        for (class, rgb) in [("red", [220, 40, 40]), ("blue", [40, 40, 220])] {
            std::fs::create_dir_all(images.join(class)).unwrap();
            for i in 0..6u8 {
                let img = image::RgbImage::from_fn(8, 8, |x, y| {
                    image::Rgb(rgb.map(|v: u8| v - ((x as u8 * 7 + y as u8 * 3 + i * 5) % 32)))
                });
                img.save(images.join(class).join(format!("{i}.png")))
                    .unwrap();
            }
        }
        let cache = dir.path().join("cache");
        Extractor::builder(&images, &cache)
            .build()
            .unwrap()
            .run(&mut TestModel::new(16, 4), &NoProgress)
            .unwrap();
        let table = headstart_cache::read_features(std::slice::from_ref(&cache)).unwrap();
        let outcome =
            headstart_fit::fit(&table, &headstart_fit::FitParams::new().check().unwrap()).unwrap();
        let head = dir.path().join("head");
        outcome.save(&head, false, &[]).unwrap();
        let good = images.join("red/0.png");
        let hostile = dir.path().join("hostile.png");
        let mut bytes = std::fs::read(images.join("blue/1.png")).unwrap();
        bytes.extend_from_slice(b"PANIC-IN-PREDICT");
        std::fs::write(&hostile, bytes).unwrap();
        headstart_extract::isolate::inject_decoder_panic(Some(|b| {
            b.ends_with(b"PANIC-IN-PREDICT")
        }));
        let mut classifier =
            Classifier::open(&head, |_| Ok(Box::new(TestModel::new(16, 4)))).unwrap();
        let got = classifier.predict(&[hostile, good], 4, &NoProgress);
        headstart_extract::isolate::inject_decoder_panic(None);
        let got = got.unwrap();
        match &got[0].outcome {
            Outcome::Failed { stage, message } => {
                assert_eq!(stage, "decode");
                assert!(message.starts_with("decoder panicked"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(got[1].outcome, Outcome::Done { .. }),
            "{:?}",
            got[1]
        );
    }
}

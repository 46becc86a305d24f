//! The error type of `headstart-cache`.

use std::path::{Path, PathBuf};

/// Errors reading or writing a cache; each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A filesystem operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory operated on.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The directory has no `cache.json`: extracting images into it creates one.
    #[error("{path}: not a headstart cache (no cache.json)")]
    NotACache {
        /// The directory given as a cache.
        path: PathBuf,
    },
    /// A folder to create a cache in holds files that are not a cache's.
    #[error(
        "{} is not empty and is not a headstart cache (it holds {}); extract writes only into a new or empty folder or an existing cache: choose another --out",
        dir.display(),
        names.join(", ")
    )]
    NotOurs {
        /// The folder.
        dir: PathBuf,
        /// Some of the entries that are not a cache's.
        names: Vec<String>,
    },
    /// A file is truncated, not Parquet, or not in the expected layout.
    #[error("{path}: {message}")]
    Format {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Part files of a cache were given instead of the cache: they also hold
    /// superseded and deleted rows.
    #[error(
        "{path} is part of the headstart cache {cache}, which also keeps superseded and deleted rows there; pass the cache directory {cache} instead, which reads only the live rows"
    )]
    InsideCache {
        /// The file or folder given.
        path: PathBuf,
        /// The cache directory it belongs to.
        cache: PathBuf,
    },
    /// The cache was made with another model or preprocessing: a run with
    /// this model needs another cache directory.
    #[error(
        "{dir} holds features of {cached}, but this run uses {requested} (one cache per model and preprocessing)"
    )]
    Mismatch {
        /// The cache directory.
        dir: PathBuf,
        /// The model the cache holds features of (name, fingerprint, dimension).
        cached: String,
        /// The model of this run, described the same way.
        requested: String,
    },
    /// Caches or files with different models or feature dimensions were mixed.
    #[error("cannot mix {first} ({first_desc}) with {second} ({second_desc})")]
    Mixed {
        /// The first input (a cache or a Parquet file).
        first: PathBuf,
        /// Its model fingerprint (and feature dimension).
        first_desc: String,
        /// The input that does not match it.
        second: PathBuf,
        /// Its model fingerprint (and feature dimension).
        second_desc: String,
    },
    /// A part would replace an existing file of the same name.
    #[error(
        "{path} already exists; refusing to replace a cache part (two writers chose the same name; please report this)"
    )]
    Exists {
        /// The part's final path.
        path: PathBuf,
    },
    /// A part or tombstone cannot be read: the cache is damaged.
    #[error(
        "{path}: {message}\nfix: this part of the cache is damaged; move it out of the parts folder (e.g. `mkdir -p {cache}/quarantine && mv {path} {cache}/quarantine/`), then extract the input again, which re-extracts the images it held"
    )]
    Damaged {
        /// The damaged part or tombstone.
        path: PathBuf,
        /// The cache directory.
        cache: PathBuf,
        /// Why it cannot be read.
        message: String,
    },
    /// The same cache or file was given more than once.
    #[error(
        "{second} is the same as {first}: its rows would be counted twice; give each cache or file once"
    )]
    Repeated {
        /// The input as first given.
        first: PathBuf,
        /// The later input naming the same cache or file.
        second: PathBuf,
    },
    /// Two caches hold the same part (one is a copy of the other, or parts
    /// were hard-linked between them).
    #[error(
        "{second} holds parts of {first} (a copy of the cache, or hard-linked parts): their rows would be counted twice; give each cache once, or extract into a new cache"
    )]
    SharedParts {
        /// The cache given first.
        first: PathBuf,
        /// The cache holding the same parts.
        second: PathBuf,
    },
    /// A column is compressed with a codec that headstart cannot decompress.
    #[error(
        "{path}: column `{column}` is compressed with {codec}, which headstart cannot read; write the file again with another codec (zstd, snappy, gzip, lz4, brotli or none), e.g. `pyarrow.parquet.write_table(table, path, compression=\"zstd\")`"
    )]
    Codec {
        /// The Parquet file.
        path: PathBuf,
        /// The column's path in the Parquet schema.
        column: String,
        /// The codec, as Parquet names it.
        codec: String,
    },
    /// A row is invalid (wrong feature length, missing path).
    #[error("{path}: row {row}: {message}")]
    Row {
        /// The file, or the row's image path for a row being written.
        path: PathBuf,
        /// The row's index in its file or buffer.
        row: usize,
        /// What is wrong with it.
        message: String,
    },
}

impl CacheError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
        move |source| CacheError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn parquet(
        path: &Path,
    ) -> impl FnOnce(parquet::errors::ParquetError) -> CacheError + '_ {
        move |e| CacheError::Format {
            path: path.to_path_buf(),
            message: format!(
                "cannot read as Parquet ({e}); is it truncated or not a Parquet file?"
            ),
        }
    }
}

//! Reading objects: whole (bounded), by byte ranges, as a seekable stream
//! (tar headers), and Parquet by footer and column chunks. Every read is
//! bounded by what the listing reported or by the caller's limit; none reads
//! an object whole unless it is one image or one manifest.

use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::{GetOptions, GetRange, ObjectStoreExt};
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::reader::{ChunkReader, Length};

use super::{Object, block_on, explain, version_of};

/// What a GET of a whole object gave.
#[derive(Debug)]
pub(crate) enum Got {
    /// Its bytes and version.
    Bytes(Vec<u8>, Option<String>),
    /// It still has the version asked about (a conditional GET answered 304).
    Unchanged,
}

/// Why an object of `bytes` bytes is not read.
pub(crate) fn too_large(bytes: u64, limit: u64) -> String {
    headstart_files::ReadError::TooLarge {
        path: Default::default(),
        bytes,
        limit,
    }
    .reason()
}

/// Reads `obj` whole, refusing it over `limit` bytes (from its listed size
/// before any request, else from the response's length before its body, and
/// while streaming, whatever the server said). With `unless`, a GET
/// conditional on the ETag: an object still at that ETag is not sent.
pub(crate) async fn get_bounded(
    obj: &Object,
    limit: u64,
    unless: Option<&str>,
) -> Result<Got, String> {
    if let Some(size) = obj.size
        && size > limit
    {
        return Err(too_large(size, limit));
    }
    let options = GetOptions {
        if_none_match: unless.map(str::to_string),
        ..GetOptions::default()
    };
    let got = match obj.store.client().get_opts(&obj.path(), options).await {
        Ok(g) => g,
        Err(object_store::Error::NotModified { .. }) => return Ok(Got::Unchanged),
        Err(e) => return Err(explain(&e)),
    };
    if got.meta.size > limit {
        return Err(too_large(got.meta.size, limit));
    }
    let version = version_of(&got.meta);
    let mut buf = Vec::with_capacity(usize::try_from(got.meta.size).unwrap_or(0));
    let mut stream = got.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| explain(&e))?;
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(too_large((buf.len() + chunk.len()) as u64, limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Got::Bytes(buf, version))
}

/// Ranges closer than this are read as one request.
const COALESCE_GAP: u64 = 64 << 10;

/// Reads `ranges` of `obj` (in order; near ones as one request, requests side
/// by side), requiring the version it was listed with: an object replaced
/// since its listing fails (its offsets may not hold).
pub(crate) async fn get_ranges(obj: &Object, ranges: &[Range<u64>]) -> Result<Vec<Bytes>, String> {
    let tag = obj.version.as_deref().and_then(super::etag_of);
    let client = obj.store.client();
    let path = obj.path();
    let mut sorted: Vec<&Range<u64>> = ranges.iter().collect();
    sorted.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<u64>> = Vec::new();
    for r in sorted {
        match merged.last_mut() {
            Some(m) if r.start <= m.end.saturating_add(COALESCE_GAP) => m.end = m.end.max(r.end),
            _ => merged.push(r.clone()),
        }
    }
    let fetched = futures::future::try_join_all(merged.iter().map(|r| {
        let options = GetOptions {
            range: Some(GetRange::Bounded(r.clone())),
            if_match: tag.map(str::to_string),
            ..GetOptions::default()
        };
        let path = &path;
        async move {
            let got = client
                .get_opts(path, options)
                .await
                .map_err(|e| explain(&e))?;
            let bytes = got.bytes().await.map_err(|e| explain(&e))?;
            if bytes.len() as u64 != r.end - r.start {
                return Err(format!(
                    "asked for bytes {}..{} and got {}: is the object shorter than listed?",
                    r.start,
                    r.end,
                    bytes.len()
                ));
            }
            Ok(bytes)
        }
    }))
    .await?;
    Ok(ranges
        .iter()
        .map(|r| {
            let i = merged
                .partition_point(|m| m.start <= r.start)
                .saturating_sub(1);
            let from = (r.start - merged[i].start) as usize;
            fetched[i].slice(from..from + (r.end - r.start) as usize)
        })
        .collect())
}

// ------------------------------------------------------ sequential reading

/// How far ahead a seek is read through rather than started anew: tar
/// members smaller than this are streamed past, larger ones skipped.
const SKIP_THROUGH: u64 = 1 << 20;
/// The most one request of a [`RemoteReader`] asks for.
const WINDOW: u64 = 64 << 20;

/// An object read front to back as `Read + Seek` (for the tar reader): one
/// ranged request streams a window; a seek a little ahead reads through, a
/// seek further ahead (or back) starts a new request there. Body errors are
/// retried by object_store from where they stopped.
pub(crate) struct RemoteReader {
    obj: Arc<Object>,
    len: u64,
    pos: u64,
    /// The chunk last read and its offset.
    chunk: Bytes,
    chunk_at: u64,
    /// The open request and the offset its next chunk starts at.
    stream: Option<(BoxStream<'static, object_store::Result<Bytes>>, u64)>,
}

impl RemoteReader {
    /// A reader of `obj`, `len` bytes long.
    pub(crate) fn new(obj: Arc<Object>, len: u64) -> RemoteReader {
        RemoteReader {
            obj,
            len,
            pos: 0,
            chunk: Bytes::new(),
            chunk_at: 0,
            stream: None,
        }
    }

    fn open(&mut self, at: u64) -> std::io::Result<()> {
        let end = (at + WINDOW).min(self.len);
        let options = GetOptions {
            range: Some(GetRange::Bounded(at..end)),
            if_match: self
                .obj
                .version
                .as_deref()
                .and_then(super::etag_of)
                .map(str::to_string),
            ..GetOptions::default()
        };
        let client = self.obj.store.client();
        let got = block_on(client.get_opts(&self.obj.path(), options)).map_err(io_err)?;
        self.stream = Some((got.into_stream(), at));
        Ok(())
    }

    /// Makes `self.chunk` hold `self.pos` (false at the end of the object).
    fn fill(&mut self) -> std::io::Result<bool> {
        loop {
            let in_chunk =
                self.pos >= self.chunk_at && self.pos < self.chunk_at + self.chunk.len() as u64;
            if in_chunk {
                return Ok(true);
            }
            if self.pos >= self.len {
                return Ok(false);
            }
            let usable = self
                .stream
                .as_ref()
                .is_some_and(|(_, next)| *next <= self.pos && self.pos - *next < SKIP_THROUGH);
            if !usable {
                self.open(self.pos)?;
            }
            let Some((stream, next)) = self.stream.as_mut() else {
                return Ok(false);
            };
            match block_on(stream.next()) {
                Some(Ok(bytes)) => {
                    self.chunk_at = *next;
                    *next += bytes.len() as u64;
                    self.chunk = bytes;
                }
                Some(Err(e)) => return Err(io_err(e)),
                // The window ended: the next fill opens the next one.
                None => self.stream = None,
            }
        }
    }
}

fn io_err(e: object_store::Error) -> std::io::Error {
    std::io::Error::other(explain(&e))
}

impl Read for RemoteReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() || !self.fill()? {
            return Ok(0);
        }
        let from = (self.pos - self.chunk_at) as usize;
        let n = buf.len().min(self.chunk.len() - from);
        buf[..n].copy_from_slice(&self.chunk[from..from + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RemoteReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        Ok(self.pos)
    }
}

// ---------------------------------------------------------------- Parquet

/// Bytes fetched from the footer end of a Parquet object at once: the
/// metadata of most files fits (a larger one takes a second request).
const FOOTER_GUESS: u64 = 64 << 10;

/// The metadata of the Parquet object `obj` (`len` bytes), from its footer:
/// one suffix request, two when the metadata is larger than the guess.
pub(crate) async fn parquet_metadata(obj: &Object, len: u64) -> Result<ParquetMetaData, String> {
    if len < 12 {
        return Err(format!("cannot read as Parquet: {len} bytes is too short"));
    }
    let first = FOOTER_GUESS.min(len);
    let tail = get_ranges(obj, std::slice::from_ref(&(len - first..len)))
        .await?
        .remove(0);
    let foot: [u8; 8] = tail[tail.len() - 8..]
        .try_into()
        .map_err(|_| "cannot read as Parquet: no footer".to_string())?;
    let footer = parquet::file::metadata::FooterTail::try_new(&foot)
        .map_err(|e| format!("cannot read as Parquet: {e}"))?;
    let meta_len = footer.metadata_length() as u64;
    if meta_len + 8 > len {
        return Err(format!(
            "cannot read as Parquet: the footer declares {meta_len} bytes of metadata in a {len}-byte object"
        ));
    }
    let bytes = if meta_len + 8 <= first {
        tail.slice((first - meta_len - 8) as usize..(first - 8) as usize)
    } else {
        let start = len - 8 - meta_len;
        get_ranges(obj, std::slice::from_ref(&(start..len - 8)))
            .await?
            .remove(0)
    };
    ParquetMetaDataReader::decode_metadata(&bytes)
        .map_err(|e| format!("cannot read as Parquet: {e}"))
}

/// The byte ranges of column chunk `columns` (leaf indices) of `row_groups`,
/// checked against the object's length (a hostile footer may say anything).
pub(crate) fn chunk_ranges(
    meta: &ParquetMetaData,
    row_groups: &[usize],
    columns: &[usize],
    len: u64,
) -> Result<Vec<Range<u64>>, String> {
    let mut out = Vec::new();
    for &g in row_groups {
        let rg = meta
            .row_groups()
            .get(g)
            .ok_or_else(|| format!("no row group {g}"))?;
        for &c in columns {
            let col = rg
                .columns()
                .get(c)
                .ok_or_else(|| format!("no column {c} in row group {g}"))?;
            let start = col
                .dictionary_page_offset()
                .unwrap_or_else(|| col.data_page_offset());
            let size = col.compressed_size();
            let (Ok(start), Ok(size)) = (u64::try_from(start), u64::try_from(size)) else {
                return Err(format!(
                    "row group {g} declares a negative offset or size for a column: is the file damaged?"
                ));
            };
            match start.checked_add(size) {
                Some(end) if end <= len => out.push(start..end),
                _ => {
                    return Err(format!(
                        "row group {g} declares a column at bytes {start}+{size} of a {len}-byte object: is the file damaged?"
                    ));
                }
            }
        }
    }
    out.sort_by_key(|r| r.start);
    Ok(out)
}

/// Some byte ranges of a Parquet object, fetched: what the reader asks for
/// must lie in them (the projected column chunks of the row groups read).
#[derive(Clone)]
pub(crate) struct Sparse {
    len: u64,
    chunks: Arc<Vec<(u64, Bytes)>>,
}

impl Sparse {
    /// The chunks `bytes` at `ranges` of an object of `len` bytes.
    pub(crate) fn new(len: u64, ranges: &[Range<u64>], bytes: Vec<Bytes>) -> Sparse {
        let mut chunks: Vec<(u64, Bytes)> = ranges.iter().map(|r| r.start).zip(bytes).collect();
        chunks.sort_by_key(|c| c.0);
        Sparse {
            len,
            chunks: Arc::new(chunks),
        }
    }

    fn find(&self, start: u64) -> parquet::errors::Result<(u64, &Bytes)> {
        self.chunks
            .iter()
            .rev()
            .find(|(at, b)| *at <= start && start < *at + b.len() as u64)
            .map(|(at, b)| (*at, b))
            .ok_or_else(|| {
                parquet::errors::ParquetError::General(format!(
                    "byte {start} was not fetched (a column chunk outside its declared range?)"
                ))
            })
    }
}

impl Length for Sparse {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for Sparse {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        use bytes::Buf;
        let (at, b) = self.find(start)?;
        Ok(b.slice((start - at) as usize..).reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let (at, b) = self.find(start)?;
        let from = (start - at) as usize;
        if from + length > b.len() {
            return Err(parquet::errors::ParquetError::General(format!(
                "bytes {start}+{length} run past a fetched column chunk: is the file damaged?"
            )));
        }
        Ok(b.slice(from..from + length))
    }
}

/// The size of `obj`: listed, or from a HEAD.
pub(crate) async fn size(obj: &Object) -> Result<u64, String> {
    match obj.size {
        Some(s) => Ok(s),
        None => obj
            .store
            .client()
            .head(&obj.path())
            .await
            .map(|m| m.size)
            .map_err(|e| explain(&e)),
    }
}

/// [`size`], waiting for it.
pub(crate) fn size_of(obj: &Object) -> Result<u64, String> {
    block_on(size(obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_reads_only_what_was_fetched() {
        let s = Sparse::new(
            100,
            &[10..20, 50..60],
            vec![Bytes::from(vec![1u8; 10]), Bytes::from(vec![2u8; 10])],
        );
        assert_eq!(s.get_bytes(12, 4).unwrap(), Bytes::from(vec![1u8; 4]));
        assert_eq!(s.get_bytes(50, 10).unwrap().len(), 10);
        assert!(s.get_bytes(30, 1).is_err());
        assert!(s.get_bytes(55, 10).is_err());
        let mut r = s.get_read(58).unwrap();
        let mut v = Vec::new();
        r.read_to_end(&mut v).unwrap();
        assert_eq!(v, vec![2u8; 2]);
    }
}

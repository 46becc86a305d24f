//! Fetching read units from object stores: one image object (a GET, bounded,
//! conditional on the cached ETag when there is one), a run of tar members
//! (one ranged GET), or a Parquet row group's image column chunks (ranged
//! GETs after the footer, read once per object). Fetched bytes are held
//! against a byte budget until the decode thread is done with them, so the
//! requests in flight never hold more than the budget in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};

use super::Object;
use super::read::{Got, Sparse, get_bounded, get_ranges, parquet_metadata, too_large};
use crate::container::{Fetch, ParquetAt, group_cells, group_plan, projected_ranges, read_group};
use crate::listing::{Item, Origin, Source};

/// Bytes fetched and not yet decoded, at most, by default: 256 MiB.
pub const DEFAULT_IO_BUFFER: u64 = 256 << 20;

/// The budget counts KiB.
const PERMIT: u64 = 1 << 10;

/// A footer read once per object, shared by the row groups fetched.
type Footer = Arc<OnceCell<Result<(ArrowReaderMetadata, u64), String>>>;

/// Fetches read units, with a byte budget and a memory of Parquet footers.
pub(crate) struct Fetcher {
    limit: u64,
    budget: Option<(Arc<Semaphore>, u64)>,
    footers: Mutex<HashMap<usize, Footer>>,
}

/// A unit fetched: the bytes of its items, or a row group's column chunks to
/// decode (on a decode thread, by [`Fetched::finish`]), or a local unit that
/// the decode thread reads itself. Holds its share of the budget until dropped.
pub(crate) struct Fetched {
    what: What,
    _permit: Option<OwnedSemaphorePermit>,
}

enum What {
    Items(Vec<Fetch>),
    Group(Box<ParquetAt>, usize),
    Failed(String),
    Local,
}

/// Whether item `i` may be skipped when its object still has this ETag.
pub(crate) type Unless<'a> = &'a (dyn Fn(usize) -> Option<String> + Sync);

impl Fetcher {
    /// A fetcher refusing objects, members and cells over `limit` bytes, and
    /// holding at most `budget` fetched bytes (`None`: no budget).
    pub(crate) fn new(limit: u64, budget: Option<u64>) -> Fetcher {
        Fetcher {
            limit,
            budget: budget.map(|b| {
                let permits = (b / PERMIT).clamp(1, Semaphore::MAX_PERMITS as u64 / 2);
                (Arc::new(Semaphore::new(permits as usize)), permits)
            }),
            footers: Mutex::new(HashMap::new()),
        }
    }

    /// Holds `bytes` of the budget (all of it for more than the budget).
    async fn hold(&self, bytes: u64) -> Option<OwnedSemaphorePermit> {
        let (sem, total) = self.budget.as_ref()?;
        let n = bytes.div_ceil(PERMIT).clamp(1, *total);
        sem.clone()
            .acquire_many_owned(u32::try_from(n).unwrap_or(u32::MAX))
            .await
            .ok()
    }

    /// Fetches the unit `unit` of `items` (see `container::units`).
    pub(crate) async fn fetch(
        &self,
        items: &[Item],
        unit: &[usize],
        unless: Option<Unless<'_>>,
    ) -> Fetched {
        let Some(&first) = unit.first() else {
            return Fetched::new(What::Items(Vec::new()), None);
        };
        let Origin::Object(obj) = &items[first].abs else {
            return Fetched::new(What::Local, None);
        };
        match items[first].source {
            Source::File => {
                let permit = self.hold(obj.size.unwrap_or(PERMIT)).await;
                let tag = unless.and_then(|u| u(first));
                let got = match get_bounded(obj, self.limit, tag.as_deref()).await {
                    Ok(Got::Bytes(b, v)) => Fetch::Bytes(b, v),
                    Ok(Got::Unchanged) => Fetch::Unchanged,
                    Err(e) => Fetch::Failed(e),
                };
                Fetched::new(What::Items(vec![got]), permit)
            }
            Source::TarMember { .. } => self.members(obj, items, unit).await,
            Source::ParquetRow { row_group, .. } => match self.group(obj, row_group).await {
                Ok((pq, permit)) => Fetched::new(What::Group(Box::new(pq), row_group), permit),
                Err(e) => Fetched::new(What::Failed(e), None),
            },
        }
    }

    /// A run of tar members of `obj`: one ranged GET over them all (members
    /// over the limit are not read).
    async fn members(&self, obj: &Object, items: &[Item], unit: &[usize]) -> Fetched {
        let at = |i: usize| match items[i].source {
            Source::TarMember { offset, len } => (offset, len),
            _ => (0, 0),
        };
        let wanted: Vec<usize> = unit
            .iter()
            .copied()
            .filter(|&i| at(i).1 <= self.limit)
            .collect();
        let start = wanted.iter().map(|&i| at(i).0).min().unwrap_or(0);
        let end = wanted
            .iter()
            .map(|&i| at(i).0.saturating_add(at(i).1))
            .max()
            .unwrap_or(0);
        let permit = self.hold(end - start).await;
        let got = if wanted.is_empty() {
            Ok(bytes::Bytes::new())
        } else {
            get_ranges(obj, std::slice::from_ref(&(start..end)))
                .await
                .map(|mut v| v.remove(0))
        };
        let out = unit
            .iter()
            .map(|&i| {
                let (offset, len) = at(i);
                if len > self.limit {
                    return Fetch::Failed(too_large(len, self.limit));
                }
                match &got {
                    Ok(b) => {
                        let from = (offset - start) as usize;
                        Fetch::Bytes(b[from..from + len as usize].to_vec(), None)
                    }
                    Err(e) => Fetch::Failed(e.clone()),
                }
            })
            .collect();
        Fetched::new(What::Items(out), permit)
    }

    /// The image column chunks of row group `group` of the Parquet object
    /// `obj`, after its footer (read once per object).
    async fn group(
        &self,
        obj: &Arc<Object>,
        group: usize,
    ) -> Result<(ParquetAt, Option<OwnedSemaphorePermit>), String> {
        let cell = self
            .footers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(Arc::as_ptr(obj) as usize)
            .or_default()
            .clone();
        let (meta, len) = cell
            .get_or_init(|| async {
                let len = super::read::size(obj).await?;
                let meta = parquet_metadata(obj, len).await?;
                let meta = ArrowReaderMetadata::try_new(Arc::new(meta), Default::default())
                    .map_err(|e| format!("cannot read as Parquet: {e}"))?;
                Ok((meta, len))
            })
            .await
            .clone()?;
        let (_, mask) = group_plan(&meta, group, self.limit)?;
        let ranges = projected_ranges(&meta, &mask, Some(&[group]), len)?;
        let permit = self
            .hold(ranges.iter().map(|r| r.end - r.start).sum())
            .await;
        let bytes = get_ranges(obj, &ranges).await?;
        let data = Sparse::new(len, &ranges, bytes);
        Ok((ParquetAt::Fetched(data, meta), permit))
    }
}

impl Fetched {
    fn new(what: What, permit: Option<OwnedSemaphorePermit>) -> Fetched {
        Fetched {
            what,
            _permit: permit,
        }
    }

    /// What each item of `unit` gave: bytes, unchanged, or why not. Decodes a
    /// row group's chunks, or reads a local unit (on the calling thread).
    pub(crate) fn finish(self, items: &[Item], unit: &[usize], limit: u64) -> Vec<Fetch> {
        let cells = match self.what {
            What::Items(v) => return v,
            What::Failed(e) => return unit.iter().map(|_| Fetch::Failed(e.clone())).collect(),
            What::Local => crate::container::load(items, unit, limit),
            What::Group(pq, group) => group_cells(items, unit, read_group(&pq, group, limit)),
        };
        cells
            .into_iter()
            .map(|c| match c {
                Ok(b) => Fetch::Bytes(b, None),
                Err(e) => Fetch::Failed(e),
            })
            .collect()
    }
}

/// Reads whole objects (images), `concurrency` at a time, each bounded by
/// `limit` bytes; in the order given. Errors name the object.
pub fn read_objects(
    objects: &[Arc<Object>],
    limit: u64,
    concurrency: usize,
) -> Vec<Result<Vec<u8>, String>> {
    use futures::StreamExt;
    super::block_on(
        futures::stream::iter(objects)
            .map(|obj| async move {
                match get_bounded(obj, limit, None).await {
                    Ok(Got::Bytes(b, _)) => Ok(b),
                    Ok(Got::Unchanged) => Err(format!("{}: not modified", obj.url())),
                    Err(e) => Err(format!("{}: {e}", obj.url())),
                }
            })
            .buffered(concurrency.max(1))
            .collect(),
    )
}

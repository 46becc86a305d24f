//! libjpeg-turbo's pixel arithmetic for scaled decoding, ported exactly: the
//! inverse DCTs (`jidctint.c` islow for 8x8, `jidctred.c` for 4x4, 2x2 and
//! 1x1), the upsamplers of `jdsample.c` and the YCbCr to RGB conversion of
//! `jdcolor.c`. Pillow's `draft()` decodes with these (its default settings:
//! islow, fancy upsampling), so a reduced decode gives its pixels.
//!
//! `JLONG` arithmetic is `i64`, `int` is `i32` (casts truncate as in C), and
//! coefficients and quantisation values are `i16` as in a SIMD build
//! (`MULTIPLIER` is `short`).

const CONST_BITS: u32 = 13;
const PASS1_BITS: u32 = 2;

/// `IDCT_range_limit(cinfo)[x & RANGE_MASK]`: the low 10 bits of `x` as a
/// signed value, plus 128, clamped to 0..=255 (`prepare_range_limit_table`).
#[inline]
fn range_limit(x: i64) -> u8 {
    let v = ((x as i32) << 22) >> 22;
    (v + 128).clamp(0, 255) as u8
}

/// `DESCALE(x, n)`: shift right by `n`, rounding.
#[inline]
fn descale(x: i64, n: u32) -> i64 {
    (x + (1 << (n - 1))) >> n
}

/// `DEQUANTIZE(coef, quantval)` with `short` operands.
#[inline]
fn deq(coef: i16, q: i16) -> i64 {
    i64::from(i32::from(coef) * i32::from(q))
}

/// `LEFT_SHIFT(DEQUANTIZE(..), PASS1_BITS)` stored in an `int`.
#[inline]
fn dc_shifted(coef: i16, q: i16) -> i32 {
    (deq(coef, q) << PASS1_BITS) as i32
}

/// The pixels of one block at `side x side` (1, 2, 4 or 8) from its
/// coefficients `coef` and quantisation table `q` (both in natural order),
/// into `out` with row stride `stride`.
#[inline]
pub(crate) fn idct(side: usize, coef: &[i16; 64], q: &[i16; 64], out: &mut [u8], stride: usize) {
    match side {
        1 => out[0] = range_limit(descale(deq(coef[0], q[0]), 3)),
        2 => idct_2x2(coef, q, out, stride),
        4 => idct_4x4(coef, q, out, stride),
        _ => idct_islow(coef, q, out, stride),
    }
}

/// `jpeg_idct_islow` (jidctint.c).
fn idct_islow(coef: &[i16; 64], q: &[i16; 64], out: &mut [u8], stride: usize) {
    let mut ws = [0i32; 64];
    for c in 0..8 {
        let at = |r: usize| deq(coef[8 * r + c], q[8 * r + c]);
        if (1..8).all(|r| coef[8 * r + c] == 0) {
            let dc = dc_shifted(coef[c], q[c]);
            for r in 0..8 {
                ws[8 * r + c] = dc;
            }
            continue;
        }
        let col = islow_1d([at(0), at(1), at(2), at(3), at(4), at(5), at(6), at(7)]);
        for (r, v) in col.into_iter().enumerate() {
            ws[8 * r + c] = descale(v, CONST_BITS - PASS1_BITS) as i32;
        }
    }
    for r in 0..8 {
        let row = &ws[8 * r..8 * r + 8];
        let o = &mut out[r * stride..r * stride + 8];
        if row[1..].iter().all(|&v| v == 0) {
            o.fill(range_limit(descale(i64::from(row[0]), PASS1_BITS + 3)));
            continue;
        }
        let v = islow_1d(std::array::from_fn(|i| i64::from(row[i])));
        for (o, v) in o.iter_mut().zip(v) {
            *o = range_limit(descale(v, CONST_BITS + PASS1_BITS + 3));
        }
    }
}

/// One islow pass over `s` (already dequantised or from the work array):
/// the eight outputs before descaling.
#[inline]
fn islow_1d(s: [i64; 8]) -> [i64; 8] {
    let (z2, z3) = (s[2], s[6]);
    let z1 = (z2 + z3) * 4433;
    let tmp2 = z1 + z3 * -15137;
    let tmp3 = z1 + z2 * 6270;
    let tmp0 = (s[0] + s[4]) << CONST_BITS;
    let tmp1 = (s[0] - s[4]) << CONST_BITS;
    let (tmp10, tmp13) = (tmp0 + tmp3, tmp0 - tmp3);
    let (tmp11, tmp12) = (tmp1 + tmp2, tmp1 - tmp2);
    let (t0, t1, t2, t3) = (s[7], s[5], s[3], s[1]);
    let (z1, z2, z3, z4) = (t0 + t3, t1 + t2, t0 + t2, t1 + t3);
    let z5 = (z3 + z4) * 9633;
    let (t0, t1, t2, t3) = (t0 * 2446, t1 * 16819, t2 * 25172, t3 * 12299);
    let (z1, z2) = (z1 * -7373, z2 * -20995);
    let (z3, z4) = (z3 * -16069 + z5, z4 * -3196 + z5);
    let (t0, t1, t2, t3) = (t0 + z1 + z3, t1 + z2 + z4, t2 + z2 + z3, t3 + z1 + z4);
    [
        tmp10 + t3,
        tmp11 + t2,
        tmp12 + t1,
        tmp13 + t0,
        tmp13 - t0,
        tmp12 - t1,
        tmp11 - t2,
        tmp10 - t3,
    ]
}

/// The odd part of `jpeg_idct_4x4` from inputs 7, 5, 3, 1.
#[inline]
fn odd4(z1: i64, z2: i64, z3: i64, z4: i64) -> (i64, i64) {
    let tmp0 = z1 * -1730 + z2 * 11893 + z3 * -17799 + z4 * 8697;
    let tmp2 = z1 * -4176 + z2 * -4926 + z3 * 7373 + z4 * 20995;
    (tmp0, tmp2)
}

/// `jpeg_idct_4x4` (jidctred.c).
fn idct_4x4(coef: &[i16; 64], q: &[i16; 64], out: &mut [u8], stride: usize) {
    let mut ws = [0i32; 32];
    for c in [0, 1, 2, 3, 5, 6, 7] {
        let at = |r: usize| deq(coef[8 * r + c], q[8 * r + c]);
        if [1, 2, 3, 5, 6, 7].iter().all(|&r| coef[8 * r + c] == 0) {
            let dc = dc_shifted(coef[c], q[c]);
            for r in 0..4 {
                ws[8 * r + c] = dc;
            }
            continue;
        }
        let tmp0 = at(0) << (CONST_BITS + 1);
        let tmp2 = at(2) * 15137 + at(6) * -6270;
        let (tmp10, tmp12) = (tmp0 + tmp2, tmp0 - tmp2);
        let (t0, t2) = odd4(at(7), at(5), at(3), at(1));
        let n = CONST_BITS - PASS1_BITS + 1;
        ws[c] = descale(tmp10 + t2, n) as i32;
        ws[24 + c] = descale(tmp10 - t2, n) as i32;
        ws[8 + c] = descale(tmp12 + t0, n) as i32;
        ws[16 + c] = descale(tmp12 - t0, n) as i32;
    }
    for r in 0..4 {
        let w = &ws[8 * r..8 * r + 8];
        let o = &mut out[r * stride..r * stride + 4];
        if [1, 2, 3, 5, 6, 7].iter().all(|&i| w[i] == 0) {
            o.fill(range_limit(descale(i64::from(w[0]), PASS1_BITS + 3)));
            continue;
        }
        let at = |i: usize| i64::from(w[i]);
        let tmp0 = at(0) << (CONST_BITS + 1);
        let tmp2 = at(2) * 15137 + at(6) * -6270;
        let (tmp10, tmp12) = (tmp0 + tmp2, tmp0 - tmp2);
        let (t0, t2) = odd4(at(7), at(5), at(3), at(1));
        let n = CONST_BITS + PASS1_BITS + 3 + 1;
        o[0] = range_limit(descale(tmp10 + t2, n));
        o[3] = range_limit(descale(tmp10 - t2, n));
        o[1] = range_limit(descale(tmp12 + t0, n));
        o[2] = range_limit(descale(tmp12 - t0, n));
    }
}

/// The odd part of `jpeg_idct_2x2` from inputs 7, 5, 3, 1.
#[inline]
fn odd2(z7: i64, z5: i64, z3: i64, z1: i64) -> i64 {
    z7 * -5906 + z5 * 6967 + z3 * -10426 + z1 * 29692
}

/// `jpeg_idct_2x2` (jidctred.c).
fn idct_2x2(coef: &[i16; 64], q: &[i16; 64], out: &mut [u8], stride: usize) {
    let mut ws = [0i32; 16];
    for c in [0, 1, 3, 5, 7] {
        let at = |r: usize| deq(coef[8 * r + c], q[8 * r + c]);
        if [1, 3, 5, 7].iter().all(|&r| coef[8 * r + c] == 0) {
            let dc = dc_shifted(coef[c], q[c]);
            ws[c] = dc;
            ws[8 + c] = dc;
            continue;
        }
        let tmp10 = at(0) << (CONST_BITS + 2);
        let tmp0 = odd2(at(7), at(5), at(3), at(1));
        let n = CONST_BITS - PASS1_BITS + 2;
        ws[c] = descale(tmp10 + tmp0, n) as i32;
        ws[8 + c] = descale(tmp10 - tmp0, n) as i32;
    }
    for r in 0..2 {
        let w = &ws[8 * r..8 * r + 8];
        let o = &mut out[r * stride..r * stride + 2];
        if [1, 3, 5, 7].iter().all(|&i| w[i] == 0) {
            o.fill(range_limit(descale(i64::from(w[0]), PASS1_BITS + 3)));
            continue;
        }
        let at = |i: usize| i64::from(w[i]);
        let tmp10 = at(0) << (CONST_BITS + 2);
        let tmp0 = odd2(at(7), at(5), at(3), at(1));
        let n = CONST_BITS + PASS1_BITS + 3 + 2;
        o[0] = range_limit(descale(tmp10 + tmp0, n));
        o[1] = range_limit(descale(tmp10 - tmp0, n));
    }
}

/// How a component's samples become output samples (`jinit_upsampler`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Upsample {
    /// Already at the output size.
    Full,
    /// Doubled across and/or down, by replication or by libjpeg's "fancy"
    /// triangle filter.
    Double { h: bool, v: bool, fancy: bool },
}

impl Upsample {
    /// The method libjpeg picks for a component whose samples are `h_expand
    /// x v_expand` times smaller than the output (1 or 2 each), `width`
    /// samples wide, at a minimum DCT scaled size of `min_size`.
    pub(crate) fn pick(h_expand: usize, v_expand: usize, width: usize, min_size: usize) -> Self {
        let fancy = min_size > 1;
        match (h_expand, v_expand) {
            (1, 1) => Self::Full,
            (2, v) => Self::Double {
                h: true,
                v: v == 2,
                fancy: fancy && width > 2,
            },
            _ => Self::Double {
                h: false,
                v: true,
                fancy,
            },
        }
    }
}

/// One output row (`y`) of a component upsampled by `method`: `plane` holds
/// `width x height` valid samples (rows `stride` apart); rows outside it
/// repeat the first or last (libjpeg's context rows). Writes at least
/// `line.len()` samples' worth that the output needs.
pub(crate) fn upsample_row(
    method: Upsample,
    plane: &[u8],
    stride: usize,
    (width, height): (usize, usize),
    y: usize,
    line: &mut [u8],
) {
    let row = |r: usize| &plane[r * stride..r * stride + width];
    let Upsample::Double { h, v, fancy } = method else {
        let n = line.len().min(width);
        line[..n].copy_from_slice(&row(y)[..n]);
        return;
    };
    let near_y = if v { y / 2 } else { y };
    let near = row(near_y.min(height - 1));
    if !fancy {
        for (i, o) in line.iter_mut().enumerate() {
            *o = near[(if h { i / 2 } else { i }).min(width - 1)];
        }
        return;
    }
    // The next-nearest row: above for an even output row, below for an odd one.
    let above = y.is_multiple_of(2);
    let far_y = match (v, above) {
        (false, _) => near_y,
        (true, true) => near_y.saturating_sub(1),
        (true, false) => near_y + 1,
    };
    let far = row(far_y.min(height - 1));
    match (h, v) {
        (false, _) => {
            // h1v2_fancy_upsample
            let bias = if above { 1 } else { 2 };
            for (o, (&a, &b)) in line.iter_mut().zip(near.iter().zip(far)) {
                *o = ((u32::from(a) * 3 + u32::from(b) + bias) >> 2) as u8;
            }
        }
        (true, false) => {
            // h2v1_fancy_upsample (width > 2)
            let s = |i: usize| u32::from(near[i]);
            let mut out = [0u8; 2];
            let last = width - 1;
            for i in 0..width.min(line.len().div_ceil(2)) {
                out[0] = if i == 0 {
                    near[0]
                } else {
                    ((3 * s(i) + s(i - 1) + 1) >> 2) as u8
                };
                out[1] = if i == last {
                    near[last]
                } else {
                    ((3 * s(i) + s(i + 1) + 2) >> 2) as u8
                };
                let n = (line.len() - 2 * i).min(2);
                line[2 * i..2 * i + n].copy_from_slice(&out[..n]);
            }
        }
        (true, true) => {
            // h2v2_fancy_upsample (width > 2)
            let cs = |i: usize| 3 * u32::from(near[i]) + u32::from(far[i]);
            let mut out = [0u8; 2];
            let last = width - 1;
            for i in 0..width.min(line.len().div_ceil(2)) {
                let this = cs(i);
                out[0] = if i == 0 {
                    ((this * 4 + 8) >> 4) as u8
                } else {
                    ((this * 3 + cs(i - 1) + 8) >> 4) as u8
                };
                out[1] = if i == last {
                    ((this * 4 + 7) >> 4) as u8
                } else {
                    ((this * 3 + cs(i + 1) + 7) >> 4) as u8
                };
                let n = (line.len() - 2 * i).min(2);
                line[2 * i..2 * i + n].copy_from_slice(&out[..n]);
            }
        }
    }
}

/// `ycc_rgb_convert` (jdcolor.c): libjpeg's 16-bit fixed-point tables.
#[inline]
pub(crate) fn ycc_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    const ONE_HALF: i64 = 1 << 15;
    let (y, cb, cr) = (i64::from(y), i64::from(cb) - 128, i64::from(cr) - 128);
    let clamp = |v: i64| v.clamp(0, 255) as u8;
    let r = y + ((91_881 * cr + ONE_HALF) >> 16);
    let g = y + ((-22_554 * cb + ONE_HALF + -46_802 * cr) >> 16);
    let b = y + ((116_130 * cb + ONE_HALF) >> 16);
    [clamp(r), clamp(g), clamp(b)]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The range-limit table as libjpeg builds it: 0..127 pass (+128),
    /// 128..511 saturate, 512..895 are 0, 896..1023 wrap to 0..127.
    #[test]
    fn range_limit_matches_libjpegs_table() {
        assert_eq!(range_limit(0), 128);
        assert_eq!(range_limit(127), 255);
        assert_eq!(range_limit(511), 255);
        assert_eq!(range_limit(512), 0);
        assert_eq!(range_limit(895), 0);
        assert_eq!(range_limit(896), 0);
        assert_eq!(range_limit(1023), 127);
        assert_eq!(range_limit(-1), 127);
        assert_eq!(range_limit(1024 + 5), 133);
    }

    /// A DC-only block is flat at every size, and the sizes agree on it.
    #[test]
    fn dc_only_blocks_are_flat_at_every_size() {
        let mut coef = [0i16; 64];
        coef[0] = -37;
        let q = [16i16; 64];
        for side in [1, 2, 4, 8] {
            let mut out = [0u8; 64];
            idct(side, &coef, &q, &mut out, 8);
            let v = (128.0 + -37.0 * 16.0 / 8.0_f64).round() as u8;
            for r in 0..side {
                assert!(out[r * 8..r * 8 + side].iter().all(|&p| p == v), "{side}");
            }
        }
    }

    /// libjpeg's colour tables at a few points (jdcolor.c's formulas).
    #[test]
    fn ycc_matches_libjpeg() {
        assert_eq!(ycc_to_rgb(128, 128, 128), [128, 128, 128]);
        assert_eq!(ycc_to_rgb(0, 0, 255), [178, 0, 0]);
        assert_eq!(ycc_to_rgb(255, 255, 0), [76, 255, 255]);
    }
}

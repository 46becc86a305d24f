//! Leak check: held-out images that duplicate a training image, exactly (same
//! content hash) or nearly (cosine of mean-centred features above a threshold).
//!
//! Near-duplicates are found exactly by blocked dot products when the
//! problem is small, otherwise with sign-random-projection LSH (bands of 12
//! bits, as many bands as give >= 99.5% recall at the threshold) followed by
//! exact verification, so reported pairs are never false positives.
//! Features are centred on the training mean first: post-ReLU CNN features
//! share a large positive offset that makes unrelated images look alike.

use std::collections::HashMap;

use headstart_cache::FeatureTable;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::engine::{add_into, dot, fold_blocks, gemm};
use crate::rng::Rng;
use crate::split::Role;

/// How a held-out image duplicates a training image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeakKind {
    /// Same content hash.
    Exact,
    /// Cosine above the threshold.
    Near,
}

/// One held-out row and the training row it duplicates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeakPair {
    /// Held-out image path.
    pub heldout_path: String,
    /// Its split (`val` or `test`).
    pub heldout_split: Role,
    /// The training image path.
    pub train_path: String,
    /// Exact or near.
    pub kind: LeakKind,
    /// Cosine of the centred features (1 for exact duplicates).
    pub cosine: f32,
}

/// Result of the leak check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeakReport {
    /// Near-duplicate cosine threshold.
    pub threshold: f32,
    /// `exact` (all pairs compared) or `lsh`.
    pub method: String,
    /// Held-out rows with an exact duplicate in train.
    pub exact_duplicates: usize,
    /// Held-out rows with a near duplicate in train (and no exact one).
    pub near_duplicates: usize,
    /// One entry per leaked held-out row (its closest training image).
    pub pairs: Vec<LeakPair>,
    /// Held-out rows dropped by `--dedupe`.
    pub dropped: usize,
}

/// Pairs-times-dimension budget below which all pairs are compared.
pub(crate) const EXACT_BUDGET: f64 = 2e9;
const BAND_BITS: usize = 12;
const MAX_BANDS: usize = 40;

/// Checks held-out rows against training rows (original views only are
/// passed in). Returns the report and, per held-out row, whether it leaked.
pub(crate) fn check(
    t: &FeatureTable,
    train: &[usize],
    heldout: &[(usize, Role)],
    threshold: f32,
) -> (LeakReport, Vec<bool>) {
    let mut flagged = vec![false; heldout.len()];
    let mut pairs: Vec<(usize, LeakPair)> = Vec::new();
    // Exact: same content hash.
    let mut by_hash: HashMap<&str, usize> = HashMap::new();
    for &r in train {
        let h = t.content_hashes[r].as_str();
        if !h.is_empty() {
            by_hash.entry(h).or_insert(r);
        }
    }
    for (i, &(r, role)) in heldout.iter().enumerate() {
        if let Some(&tr) = by_hash.get(t.content_hashes[r].as_str()) {
            flagged[i] = true;
            pairs.push((
                i,
                LeakPair {
                    heldout_path: t.paths[r].clone(),
                    heldout_split: role,
                    train_path: t.paths[tr].clone(),
                    kind: LeakKind::Exact,
                    cosine: 1.0,
                },
            ));
        }
    }
    let exact_duplicates = pairs.len();
    // Near: the rest.
    let queries: Vec<usize> = (0..heldout.len()).filter(|&i| !flagged[i]).collect();
    let d = t.dim;
    let mut method = "exact".to_string();
    if !train.is_empty() && !queries.is_empty() && d > 0 {
        let center = mean(t, train);
        let q_rows: Vec<usize> = queries.iter().map(|&i| heldout[i].0).collect();
        let work = train.len() as f64 * q_rows.len() as f64 * d as f64;
        let bands = bands_for(threshold);
        let best = match bands {
            Some(l) if work > EXACT_BUDGET => {
                method = "lsh".into();
                near_lsh(t, train, &q_rows, &center, threshold, l, |_, _| false)
            }
            _ => near_exact(t, train, &q_rows, &center, |_, _| false),
        };
        for (qi, (cos, tr)) in queries.iter().zip(best) {
            if cos >= threshold {
                let (r, role) = heldout[*qi];
                flagged[*qi] = true;
                pairs.push((
                    *qi,
                    LeakPair {
                        heldout_path: t.paths[r].clone(),
                        heldout_split: role,
                        train_path: t.paths[tr].clone(),
                        kind: LeakKind::Near,
                        cosine: cos,
                    },
                ));
            }
        }
    }
    pairs.sort_by_key(|p| p.0);
    let near_duplicates = pairs.len() - exact_duplicates;
    (
        LeakReport {
            threshold,
            method,
            exact_duplicates,
            near_duplicates,
            pairs: pairs.into_iter().map(|p| p.1).collect(),
            dropped: 0,
        },
        flagged,
    )
}

pub(crate) fn mean(t: &FeatureTable, rows: &[usize]) -> Vec<f32> {
    let d = t.dim;
    let block = |range: std::ops::Range<usize>| {
        let mut s = vec![0.0f64; d];
        for &r in &rows[range] {
            s.iter_mut()
                .zip(t.row(r))
                .for_each(|(a, &v)| *a += f64::from(v));
        }
        s
    };
    let s = fold_blocks(rows.len(), 2 * d, block, |a, b| add_into(a, &b));
    s.iter().map(|v| (v / rows.len() as f64) as f32).collect()
}

/// Centred, unit-length copy of row `r` into `out`.
fn unit(t: &FeatureTable, r: usize, center: &[f32], out: &mut [f32]) {
    out.iter_mut()
        .zip(t.row(r))
        .zip(center)
        .for_each(|((o, &v), &c)| *o = v - c);
    let n = dot(out, out).sqrt() as f32;
    if n > 0.0 {
        out.iter_mut().for_each(|v| *v /= n);
    }
}

/// Number of 12-bit bands for >= 99.5% recall at `threshold`, if reasonable.
pub(crate) fn bands_for(threshold: f32) -> Option<usize> {
    let theta = f64::from(threshold).clamp(-1.0, 1.0).acos();
    let q = 1.0 - theta / std::f64::consts::PI;
    let band = q.powi(BAND_BITS as i32);
    if band >= 1.0 {
        return Some(1);
    }
    let l = ((0.005f64).ln() / (1.0 - band).ln()).ceil() as usize;
    (l <= MAX_BANDS).then_some(l.max(1))
}

/// Best (cosine, train row) for each query, comparing all pairs except
/// those where `skip(query row, train row)`.
pub(crate) fn near_exact(
    t: &FeatureTable,
    train: &[usize],
    queries: &[usize],
    center: &[f32],
    skip: impl Fn(usize, usize) -> bool + Sync,
) -> Vec<(f32, usize)> {
    let d = t.dim;
    const QB: usize = 256;
    const TB: usize = 512;
    queries
        .par_chunks(QB)
        .flat_map_iter(|qc| {
            let mut q = vec![0.0f32; qc.len() * d];
            for (i, &r) in qc.iter().enumerate() {
                unit(t, r, center, &mut q[i * d..(i + 1) * d]);
            }
            let mut best = vec![(f32::NEG_INFINITY, usize::MAX); qc.len()];
            let mut tb = vec![0.0f32; TB * d];
            let mut sims = vec![0.0f32; qc.len() * TB];
            for tc in train.chunks(TB) {
                for (j, &r) in tc.iter().enumerate() {
                    unit(t, r, center, &mut tb[j * d..(j + 1) * d]);
                }
                let m = tc.len();
                gemm(&q, (qc.len(), d), false, &tb, (m, d), true, 0.0, &mut sims);
                for (i, b) in best.iter_mut().enumerate() {
                    for (j, &s) in sims[i * m..(i + 1) * m].iter().enumerate() {
                        if s > b.0 && !skip(qc[i], tc[j]) {
                            *b = (s, tc[j]);
                        }
                    }
                }
            }
            best
        })
        .collect()
}

/// Best (cosine, train row) per query among LSH candidates, except pairs where
/// `skip(query row, train row)`; (-inf, _) when none.
pub(crate) fn near_lsh(
    t: &FeatureTable,
    train: &[usize],
    queries: &[usize],
    center: &[f32],
    threshold: f32,
    bands: usize,
    skip: impl Fn(usize, usize) -> bool + Sync,
) -> Vec<(f32, usize)> {
    let d = t.dim;
    let bits = bands * BAND_BITS;
    let mut rng = Rng::new(0x1ea4_c0de);
    let planes: Vec<f32> = (0..d * bits).map(|_| rng.normal() as f32).collect();
    let words = bits.div_ceil(64);
    // Packed sign bits per row (rows x words).
    let sign = |rows: &[usize]| -> Vec<u64> {
        const CB: usize = 256;
        let mut sig = vec![0u64; rows.len() * words];
        sig.par_chunks_mut(CB * words)
            .zip(rows.par_chunks(CB))
            .for_each(|(sc, rc)| {
                let m = rc.len();
                let mut x = vec![0.0f32; m * d];
                for (i, &r) in rc.iter().enumerate() {
                    // Centring matters for the sign; scaling does not.
                    x[i * d..(i + 1) * d]
                        .iter_mut()
                        .zip(t.row(r))
                        .zip(center)
                        .for_each(|((o, &v), &c)| *o = v - c);
                }
                let mut proj = vec![0.0f32; m * bits];
                gemm(&x, (m, d), false, &planes, (d, bits), false, 0.0, &mut proj);
                for i in 0..m {
                    for bit in 0..bits {
                        if proj[i * bits + bit] > 0.0 {
                            sc[i * words + bit / 64] |= 1u64 << (bit % 64);
                        }
                    }
                }
            });
        sig
    };
    let key = |sig: &[u64], row: usize, band: usize| -> usize {
        let start = band * BAND_BITS;
        let mut k = 0usize;
        for j in 0..BAND_BITS {
            let bit = start + j;
            k |= (((sig[row * words + bit / 64] >> (bit % 64)) & 1) as usize) << j;
        }
        k
    };
    // Hamming prefilter: a pair at the threshold angle differs in a fraction
    // theta/pi of the bits; allow 6 standard deviations above that.
    let p_diff = f64::from(threshold).clamp(-1.0, 1.0).acos() / std::f64::consts::PI;
    let mean_diff = bits as f64 * p_diff;
    let max_diff = (mean_diff + 6.0 * (mean_diff * (1.0 - p_diff)).sqrt() + 2.0) as u32;
    let tk = sign(train);
    let qk = sign(queries);
    // CSR buckets per band.
    let nb = 1usize << BAND_BITS;
    let mut starts = vec![0u32; bands * (nb + 1)];
    for i in 0..train.len() {
        for b in 0..bands {
            starts[b * (nb + 1) + key(&tk, i, b) + 1] += 1;
        }
    }
    for b in 0..bands {
        let s = &mut starts[b * (nb + 1)..(b + 1) * (nb + 1)];
        for j in 1..=nb {
            s[j] += s[j - 1];
        }
    }
    let mut fill = starts.clone();
    let mut members = vec![0u32; train.len() * bands];
    for i in 0..train.len() {
        for b in 0..bands {
            let slot = &mut fill[b * (nb + 1) + key(&tk, i, b)];
            members[b * train.len() + *slot as usize] = i as u32;
            *slot += 1;
        }
    }
    // Per-row centred norms and centre products for verification on raw rows.
    let cc = dot(center, center);
    let stats = |r: usize| -> (f64, f64) {
        let x = t.row(r);
        let xc = dot(x, center);
        let xx = dot(x, x);
        (xc, (xx - 2.0 * xc + cc).max(0.0).sqrt())
    };
    let tstats: Vec<(f64, f64)> = train.par_iter().map(|&r| stats(r)).collect();
    queries
        .par_iter()
        .enumerate()
        .map_init(Vec::<u32>::new, |cand, (qi, &qr)| {
            cand.clear();
            for b in 0..bands {
                let kq = key(&qk, qi, b);
                let s = &starts[b * (nb + 1)..];
                let (lo, hi) = (s[kq] as usize, s[kq + 1] as usize);
                cand.extend_from_slice(&members[b * train.len() + lo..b * train.len() + hi]);
            }
            cand.sort_unstable();
            cand.dedup();
            let (qc, qn) = stats(qr);
            let mut best = (f32::NEG_INFINITY, usize::MAX);
            let qs = &qk[qi * words..(qi + 1) * words];
            for &ti in cand.iter() {
                let ts = &tk[ti as usize * words..(ti as usize + 1) * words];
                let diff: u32 = qs.iter().zip(ts).map(|(a, b)| (a ^ b).count_ones()).sum();
                if diff > max_diff {
                    continue;
                }
                let (tc, tn) = tstats[ti as usize];
                if qn == 0.0 || tn == 0.0 || skip(qr, train[ti as usize]) {
                    continue;
                }
                let raw = dot(t.row(qr), t.row(train[ti as usize]));
                let cos = ((raw - qc - tc + cc) / (qn * tn)) as f32;
                if cos > best.0 {
                    best = (cos, train[ti as usize]);
                }
            }
            best
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn table(n: usize, d: usize, seed: u64) -> FeatureTable {
        let mut rng = Rng::new(seed);
        let mut t = FeatureTable {
            dim: d,
            ..Default::default()
        };
        for i in 0..n {
            t.paths.push(format!("img{i}"));
            t.labels.push(Some("a".into()));
            t.splits.push(None);
            t.content_hashes.push(format!("h{i}"));
            t.views.push("original".into());
            for _ in 0..d {
                t.features.push(rng.normal() as f32 + 3.0);
            }
        }
        t
    }

    #[test]
    fn finds_exact_and_near_duplicates_both_ways() {
        let d = 64;
        let mut t = table(400, d, 1);
        // Row 390 duplicates row 5's file; row 391 is a slightly noisy copy of row 7.
        t.content_hashes[390] = t.content_hashes[5].clone();
        let mut rng = Rng::new(9);
        for j in 0..d {
            let v = t.features[7 * d + j] + 0.02 * rng.normal() as f32;
            t.features[391 * d + j] = v;
        }
        let train: Vec<usize> = (0..380).collect();
        let held: Vec<(usize, Role)> = (380..400).map(|r| (r, Role::Test)).collect();
        let (rep, flagged) = check(&t, &train, &held, 0.98);
        assert_eq!(rep.method, "exact");
        assert_eq!(
            (rep.exact_duplicates, rep.near_duplicates),
            (1, 1),
            "{rep:?}"
        );
        assert_eq!(flagged.iter().filter(|f| **f).count(), 2);
        assert!(flagged[10] && flagged[11]);
        assert_eq!(rep.pairs[1].train_path, "img7");
        assert!(rep.pairs[1].cosine > 0.98);
        // LSH path finds the same near-duplicate.
        let center = mean(&t, &train);
        let best = near_lsh(
            &t,
            &train,
            &[391, 392],
            &center,
            0.98,
            bands_for(0.98).unwrap(),
            |_, _| false,
        );
        assert_eq!(best[0].1, 7);
        assert!(best[0].0 > 0.98);
        assert!(best[1].0 < 0.98);
        let exact = near_exact(&t, &train, &[391, 392], &center, |_, _| false);
        assert!((exact[0].0 - best[0].0).abs() < 1e-4);
    }

    #[test]
    fn band_count_grows_as_threshold_drops() {
        let a = bands_for(0.99).unwrap();
        let b = bands_for(0.98).unwrap();
        let c = bands_for(0.9).unwrap();
        assert!(a <= b && b < c, "{a} {b} {c}");
        assert!(bands_for(0.5).is_none());
    }
}

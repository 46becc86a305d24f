//! Two small hand-written SVG charts: a line over sweep candidates and a
//! reliability diagram.

use std::fmt::Write as _;

use headstart_fit::CalibrationBin;

use crate::esc;

/// `values` over the categorical `labels`, the `selected` point ringed.
pub(crate) fn line(
    title: &str,
    labels: &[String],
    values: &[f64],
    selected: Option<usize>,
    color: &str,
    bounds: (f64, f64),
) -> String {
    let (w, h, left, right, top, bottom) = (520.0, 220.0, 60.0, 20.0, 28.0, 48.0);
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if !lo.is_finite() {
        (0.0, 1.0)
    } else {
        let pad = if hi - lo < 1e-12 {
            0.05 * lo.abs().max(1e-3)
        } else {
            0.08 * (hi - lo)
        };
        // Padding never leaves the quantity's range (no negative log-loss, no 101 %).
        ((lo - pad).max(bounds.0), (hi + pad).min(bounds.1))
    };
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, lo + 0.5)
    };
    let n = values.len().max(1);
    let x = |i: usize| {
        if n == 1 {
            left + (w - left - right) / 2.0
        } else {
            left + (w - left - right) * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| top + (h - top - bottom) * (1.0 - (v - lo) / (hi - lo));
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img"><title>{}</title>"#,
        esc(title)
    );
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="16" font-size="13" font-weight="bold">{}</text>"#,
        esc(title)
    );
    for t in 0..=4 {
        let v = lo + (hi - lo) * f64::from(t) / 4.0;
        let _ = writeln!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{y:.1}" font-size="10" text-anchor="end" dominant-baseline="middle">{}</text>"##,
            w - right,
            left - 4.0,
            fmt(v),
            y = y(v)
        );
    }
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .map(|(i, &v)| format!("{:.1},{:.1}", x(i), y(v)))
        .collect();
    let _ = writeln!(
        s,
        r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
        points.join(" ")
    );
    for (i, &v) in values.iter().enumerate() {
        if v.is_finite() {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"><title>{}: {}</title></circle>"#,
                x(i),
                y(v),
                esc(&labels[i]),
                fmt(v)
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" font-size="10" text-anchor="end" transform="rotate(-30 {:.1} {})">{}</text>"#,
            x(i),
            h - bottom + 14.0,
            x(i),
            h - bottom + 14.0,
            esc(&labels[i])
        );
    }
    if let Some(i) = selected.filter(|&i| values.get(i).is_some_and(|v| v.is_finite())) {
        let _ = writeln!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="7" fill="none" stroke="#e67e22" stroke-width="2"><title>selected</title></circle>"##,
            x(i),
            y(values[i])
        );
    }
    s.push_str("</svg>\n");
    s
}

fn fmt(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// Accuracy per confidence bin as bars against the diagonal of perfect
/// calibration; empty bins are left out.
pub(crate) fn reliability(bins: &[CalibrationBin]) -> String {
    let (size, left, top, bottom) = (300.0, 50.0, 20.0, 40.0);
    let (w, h) = (left + size + 20.0, top + size + bottom);
    let px = |v: f64| left + size * v;
    let py = |v: f64| top + size * (1.0 - v);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg class="chart" id="reliability" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img"><title>Reliability diagram</title>"#
    );
    for t in 0..=5 {
        let v = f64::from(t) / 5.0;
        let _ = writeln!(
            s,
            r##"<line x1="{}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{y:.1}" font-size="10" text-anchor="end" dominant-baseline="middle">{v:.1}</text><text x="{:.1}" y="{}" font-size="10" text-anchor="middle">{v:.1}</text>"##,
            px(0.0),
            px(1.0),
            left - 4.0,
            px(v),
            top + size + 14.0,
            y = py(v)
        );
    }
    for b in bins.iter().filter(|b| b.count > 0) {
        let _ = writeln!(
            s,
            r##"<rect class="bin" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#5dade2" stroke="#fff"><title>confidence {:.1}-{:.1}: accuracy {:.3}, mean confidence {:.3}, {} images</title></rect>"##,
            px(b.lower),
            py(b.accuracy),
            size * (b.upper - b.lower),
            size * b.accuracy,
            b.lower,
            b.upper,
            b.accuracy,
            b.mean_confidence,
            b.count
        );
    }
    let _ = writeln!(
        s,
        r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#c0392b" stroke-dasharray="4 3"/>"##,
        px(0.0),
        py(0.0),
        px(1.0),
        py(1.0)
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{}" font-size="11" text-anchor="middle">confidence (top probability)</text><text x="12" y="{:.1}" font-size="11" text-anchor="middle" transform="rotate(-90 12 {:.1})">accuracy</text>"#,
        px(0.5),
        h - 6.0,
        py(0.5),
        py(0.5)
    );
    s.push_str("</svg>\n");
    s
}

/// Horizontal bars: one row per label, one bar per series (values in
/// `[0, max]`), as a standalone SVG document.
pub(crate) fn bars(
    title: &str,
    labels: &[String],
    series: &[(&str, Vec<f64>)],
    max: f64,
) -> String {
    const COLORS: [&str; 4] = ["#2471a3", "#c0392b", "#27ae60", "#8e44ad"];
    let (left, bar, gap, width) = (190.0, 14.0, 10.0, 360.0);
    let group = bar * series.len() as f64 + gap;
    let (w, h) = (
        left + width + 70.0,
        40.0 + group * labels.len() as f64 + 24.0,
    );
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif"><title>{t}</title><text x="10" y="18" font-size="13" font-weight="bold">{t}</text>"#,
        t = esc(title)
    );
    s.push('\n');
    for (si, (name, _)) in series.iter().enumerate() {
        let x = left + 130.0 * si as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="26" width="10" height="10" fill="{}"/><text x="{}" y="35" font-size="11">{}</text>"#,
            COLORS[si % COLORS.len()],
            x + 14.0,
            esc(name)
        );
    }
    for (i, label) in labels.iter().enumerate() {
        let y0 = 44.0 + group * i as f64;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{:.1}" font-size="12" text-anchor="end" dominant-baseline="middle">{}</text>"#,
            left - 6.0,
            y0 + bar * series.len() as f64 / 2.0,
            esc(label)
        );
        for (si, (_, values)) in series.iter().enumerate() {
            let v = values.get(i).copied().unwrap_or(f64::NAN);
            let len = if v.is_finite() {
                width * (v / max).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let y = y0 + bar * si as f64;
            let _ = writeln!(
                s,
                r#"<rect x="{left}" y="{y:.1}" width="{len:.1}" height="{:.1}" fill="{}"/><text x="{:.1}" y="{:.1}" font-size="10" dominant-baseline="middle">{}</text>"#,
                bar - 2.0,
                COLORS[si % COLORS.len()],
                left + len + 4.0,
                y + bar / 2.0 - 1.0,
                if v.is_finite() {
                    format!("{v:.4}")
                } else {
                    "-".into()
                }
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

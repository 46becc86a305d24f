//! A hand-written SVG of a confusion matrix.

use std::fmt::Write as _;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Rows are true classes, columns predicted; cells shaded by row-normalised count.
pub(crate) fn confusion_svg(title: &str, names: &[String], m: &[Vec<usize>]) -> String {
    let k = names.len();
    let cell: usize = if k <= 20 {
        32
    } else if k <= 60 {
        16
    } else {
        10
    };
    let font = (cell as f64 * 0.45).clamp(6.0, 12.0);
    let label_chars = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(1)
        .min(30);
    let margin = (label_chars as f64 * font * 0.62) as usize + 12;
    let top = margin + 30;
    let w = margin + k * cell + 20;
    let h = top + k * cell + 30;
    let mut s = open(w, h, title);
    let short = |n: &str| -> String { esc(&n.chars().take(30).collect::<String>()) };
    for (i, name) in names.iter().enumerate() {
        // Row label (true class) on the left, column label (predicted) on top, rotated.
        let y = top + i * cell + cell / 2;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{y}" font-size="{font}" text-anchor="end" dominant-baseline="middle">{}</text>"#,
            margin - 4,
            short(name)
        );
        let x = margin + i * cell + cell / 2;
        let _ = writeln!(
            s,
            r#"<text x="{x}" y="{}" font-size="{font}" transform="rotate(-60 {x} {})">{}</text>"#,
            top - 4,
            top - 4,
            short(name)
        );
    }
    for (i, row) in m.iter().enumerate() {
        let total: usize = row.iter().sum();
        for (j, &c) in row.iter().enumerate() {
            let frac = if total > 0 {
                c as f64 / total as f64
            } else {
                0.0
            };
            // White -> dark blue.
            let r = (255.0 - frac * 225.0) as u8;
            let g = (255.0 - frac * 170.0) as u8;
            let b = (255.0 - frac * 80.0) as u8;
            let (x, y) = (margin + j * cell, top + i * cell);
            let _ = write!(
                s,
                r##"<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="#{r:02x}{g:02x}{b:02x}" stroke="#dddddd" stroke-width="0.5"><title>{} -> {}: {c}</title></rect>"##,
                esc(&names[i]),
                esc(&names[j])
            );
            if k <= 30 && c > 0 {
                let color = if frac > 0.5 { "white" } else { "black" };
                let _ = write!(
                    s,
                    r#"<text x="{}" y="{}" font-size="{}" fill="{color}" text-anchor="middle" dominant-baseline="middle">{c}</text>"#,
                    x + cell / 2,
                    y + cell / 2,
                    (font * 0.9).max(6.0)
                );
            }
            s.push('\n');
        }
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" font-size="11" text-anchor="middle">rows: true class, columns: predicted</text>"#,
        margin + k * cell / 2,
        h - 8
    );
    s.push_str("</svg>\n");
    s
}

/// A horizontal bar chart of confused pairs `[true, predicted, count]`: one
/// row per pair, the bar the share of the true class's rows so predicted.
/// Its size depends on the number of pairs only, not on the class count.
pub(crate) fn confused_pairs_svg(
    title: &str,
    names: &[String],
    support: &[usize],
    pairs: &[[usize; 3]],
) -> String {
    const ROW: usize = 18;
    const BAR: usize = 300;
    let label = |t: usize, p: usize| -> String {
        let short = |n: &str| n.chars().take(40).collect::<String>();
        format!("{} \u{2192} {}", short(&names[t]), short(&names[p]))
    };
    let label_chars = pairs
        .iter()
        .map(|&[t, p, _]| label(t, p).chars().count())
        .max()
        .unwrap_or(10);
    let margin = (label_chars as f64 * 11.0 * 0.6) as usize + 16;
    let top = 50;
    let w = (margin + BAR + 120).max(420);
    let h = top + pairs.len().max(1) * ROW + 30;
    let mut s = open(w, h, title);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="38" font-size="11" text-anchor="middle">true → predicted; bar: share of the true class's images; all cells: confusion_cells in metrics.json</text>"#,
        w / 2
    );
    if pairs.is_empty() {
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" font-size="12" text-anchor="middle">no mistakes</text>"#,
            w / 2,
            top + ROW / 2
        );
    }
    for (i, &[t, p, c]) in pairs.iter().enumerate() {
        let y = top + i * ROW;
        let total = support.get(t).copied().unwrap_or(0).max(c).max(1);
        let frac = c as f64 / total as f64;
        let len = (frac * BAR as f64).round().max(1.0) as usize;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" font-size="11" text-anchor="end" dominant-baseline="middle">{}</text>"#,
            margin - 6,
            y + ROW / 2,
            esc(&label(t, p))
        );
        let _ = writeln!(
            s,
            r##"<rect x="{margin}" y="{}" width="{len}" height="{}" fill="#1e55af"><title>{}: {c} of {total}</title></rect>"##,
            y + 2,
            ROW - 4,
            esc(&label(t, p))
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" font-size="11" dominant-baseline="middle">{c} / {total}</text>"#,
            margin + len + 6,
            y + ROW / 2
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The start of an SVG of `w` x `h` pixels: white background, `title` centred on top.
fn open(w: usize, h: usize, title: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="18" font-size="14" text-anchor="middle">{}</text>"#,
        w / 2,
        esc(title)
    );
    s
}

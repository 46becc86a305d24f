//! Self-contained HTML reports: one file that works offline and from
//! `file://` (styles, scripts, charts and thumbnails inline; no network).
//!
//! - [`head_report`]: what `fit` and `eval` write into a head folder
//!   (`report.html`): summary with the majority baseline, the C sweep, the
//!   per-class table, a clickable confusion matrix, the most confident mistakes
//!   and a reliability diagram.
//! - [`audit_report`]: what `audit` writes (`audit.html`): probable label
//!   errors and duplicates across classes.
//!
//! Thumbnails are the caller's business (it knows where the images are): a
//! report asks for images with [`head_thumbnail_images`] /
//! [`audit_thumbnail_images`] (at most [`MAX_THUMBNAILS`]) and gets [`Thumb`]s,
//! made with [`thumbnail_uri`]. An image is its cache path and content hash
//! ([`ImageRef`]), so two inputs' images at the same relative path stay apart.
//!
//! ```
//! use std::collections::HashMap;
//! use headstart_fit::Metrics;
//! use headstart_report::{Context, ImageRef, Thumb, head_report, head_thumbnail_images};
//!
//! let names = vec!["cat".to_string(), "dog".to_string()];
//! let probs = [0.9, 0.1, 0.3, 0.7, 0.8, 0.2];
//! let rows = [("a.png", "h1"), ("b.png", "h2"), ("c.png", "h3")];
//! let m = Metrics::compute("test", &names, &[0, 1, 1], &probs, &rows, 5);
//! let images = head_thumbnail_images(&m);
//! assert_eq!(images[0].path, "c.png"); // the one mistake comes first
//! let thumbs: HashMap<ImageRef, Thumb> =
//!     images.into_iter().map(|i| (i, Thumb::Missing("file is gone".into()))).collect();
//! let ctx = Context {
//!     title: "pets".into(),
//!     dataset: "cache/".into(),
//!     backbone: "toy".into(),
//!     train_class_counts: vec![],
//! };
//! let html = head_report(&ctx, None, &m, &thumbs);
//! assert!(html.contains("<section id=\"confusion\""));
//! ```

#![warn(missing_docs)]

mod chart;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use base64::Engine as _;
use headstart_fit::{AuditReport, FitOutcome, Metrics};

/// Most thumbnails one report embeds (a 50,000-image report stays small).
pub const MAX_THUMBNAILS: usize = 200;
/// Longest side of a thumbnail, in pixels.
pub const THUMB_SIDE: u32 = 96;
/// Confident mistakes shown with thumbnails.
pub const MISTAKES_SHOWN: usize = 40;
/// Examples kept per off-diagonal confusion cell (per diagonal cell: half).
pub const PER_CELL: usize = 6;
/// Label issues listed in the audit page (thumbnails for the first ones).
pub const ISSUES_SHOWN: usize = 100;
/// Cross-class duplicate pairs listed in the audit page.
pub const DUPLICATES_SHOWN: usize = 30;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The pixel buffer does not hold `width * height * 3` bytes.
    #[error("thumbnail source of {width}x{height} pixels has {len} bytes, not width*height*3")]
    BadPixels {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// Bytes given.
        len: usize,
    },
    /// JPEG encoding failed.
    #[error("encoding a thumbnail: {0}")]
    Encode(String),
}

/// An image for the report: a data URI, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub enum Thumb {
    /// `data:image/jpeg;base64,...`.
    Image(String),
    /// Why no image (e.g. `file is gone`), shown in its place.
    Missing(String),
}

/// What the report is about.
#[derive(Debug, Clone)]
pub struct Context {
    /// Page title.
    pub title: String,
    /// The data: cache folders.
    pub dataset: String,
    /// The backbone (model name and fingerprint).
    pub backbone: String,
    /// Training rows per class of the head being evaluated, in its class
    /// order (what the majority baseline of an evaluation predicts); empty
    /// when unknown. A fit's report takes them from the fit itself.
    pub train_class_counts: Vec<usize>,
}

/// A JPEG thumbnail (longest side `side`) of an RGB8 image, as a data URI.
pub fn thumbnail_uri(
    width: u32,
    height: u32,
    rgb: &[u8],
    side: u32,
) -> Result<String, ReportError> {
    let img =
        image::RgbImage::from_raw(width, height, rgb.to_vec()).ok_or(ReportError::BadPixels {
            width,
            height,
            len: rgb.len(),
        })?;
    let small = image::DynamicImage::ImageRgb8(img)
        .thumbnail(side, side)
        .to_rgb8();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
        .encode_image(&small)
        .map_err(|e| ReportError::Encode(e.to_string()))?;
    Ok(format!(
        "data:image/jpeg;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(jpeg)
    ))
}

/// Which rows of `m` the report shows: the most confident mistakes, and up to
/// [`PER_CELL`] of the most confident rows of each confusion cell.
struct Plan {
    mistakes: Vec<usize>,
    cells: BTreeMap<(u32, u32), Vec<usize>>,
}

fn plan(m: &Metrics) -> Plan {
    let p = &m.predictions;
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[b].confidence.total_cmp(&p[a].confidence).then(a.cmp(&b)));
    let mistakes = order
        .iter()
        .copied()
        .filter(|&i| p[i].true_class != p[i].predicted)
        .take(MISTAKES_SHOWN)
        .collect();
    let mut cells: BTreeMap<(u32, u32), Vec<usize>> = BTreeMap::new();
    for &i in &order {
        let key = (p[i].true_class, p[i].predicted);
        let cap = if key.0 == key.1 {
            PER_CELL / 2
        } else {
            PER_CELL
        };
        let v = cells.entry(key).or_default();
        if v.len() < cap {
            v.push(i);
        }
    }
    Plan { mistakes, cells }
}

/// Keeps the first occurrence of each path, up to [`MAX_THUMBNAILS`].
/// One image of a feature cache: its path (relative to the extract INPUT)
/// and its content hash (empty when the cache has none).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// Path as in the cache.
    pub path: String,
    /// Content hash as in the cache.
    pub content_hash: String,
}

impl ImageRef {
    fn new(path: &str, content_hash: &str) -> Self {
        Self {
            path: path.to_string(),
            content_hash: content_hash.to_string(),
        }
    }
}

fn unique_capped(images: impl IntoIterator<Item = ImageRef>) -> Vec<ImageRef> {
    let mut seen = HashSet::new();
    images
        .into_iter()
        .filter(|i| seen.insert(i.clone()))
        .take(MAX_THUMBNAILS)
        .collect()
}

/// The images [`head_report`] shows, most important first (mistakes, then
/// confusion cells round-robin, wrong cells before right ones), at most
/// [`MAX_THUMBNAILS`].
pub fn head_thumbnail_images(m: &Metrics) -> Vec<ImageRef> {
    let plan = plan(m);
    let p = &m.predictions;
    let mut order: Vec<usize> = plan.mistakes.clone();
    for correct in [false, true] {
        for rank in 0..PER_CELL {
            for (&(t, q), rows) in &plan.cells {
                if (t == q) == correct
                    && let Some(&i) = rows.get(rank)
                {
                    order.push(i);
                }
            }
        }
    }
    unique_capped(
        order
            .into_iter()
            .map(|i| ImageRef::new(&p[i].path, &p[i].content_hash)),
    )
}

/// The images [`audit_report`] shows: the top label issues, then both sides
/// of the duplicate pairs; at most [`MAX_THUMBNAILS`].
pub fn audit_thumbnail_images(a: &AuditReport) -> Vec<ImageRef> {
    let issues = a
        .issues
        .iter()
        .take(ISSUES_SHOWN)
        .map(|i| ImageRef::new(&i.path, &i.content_hash));
    let dups = a.duplicates.iter().take(DUPLICATES_SHOWN).flat_map(|d| {
        [
            ImageRef::new(&d.path, &d.content_hash),
            ImageRef::new(&d.other_path, &d.other_content_hash),
        ]
    });
    unique_capped(issues.chain(dups))
}

/// A standalone SVG bar chart: one group of bars per label, one bar per
/// series, values drawn on `[0, max]` (used by `compare`).
pub fn bar_chart(title: &str, labels: &[String], series: &[(&str, Vec<f64>)], max: f64) -> String {
    chart::bars(title, labels, series, max)
}

pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.2} %", 100.0 * v)
    } else {
        "-".into()
    }
}

const STYLE: &str = r#"
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:16px;color:#222}
h1{font-size:22px} h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0} td,th{padding:3px 8px;border:1px solid #ddd;text-align:right}
th{background:#f4f4f4} td.l,th.l{text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:8px}
figure{margin:0;width:120px;font-size:11px;word-break:break-all}
figure img{display:block;max-width:96px;max-height:96px;border:1px solid #ccc}
.missing{width:96px;height:96px;display:flex;align-items:center;justify-content:center;text-align:center;background:#f6f0f0;color:#a33;font-size:10px;border:1px dashed #c99}
table.cm td{cursor:pointer;min-width:26px;text-align:center} table.cm td.sel{outline:2px solid #e60}
.note{color:#666;font-size:12px} .bad{color:#a33}
"#;

const SCRIPT: &str = r#"
document.querySelectorAll('table.cm td[data-cell]').forEach(function(td){
  td.addEventListener('click', function(){
    document.querySelectorAll('table.cm td.sel').forEach(function(e){e.classList.remove('sel')});
    td.classList.add('sel');
    document.querySelectorAll('.cell-panel').forEach(function(p){p.hidden = true});
    var p = document.getElementById('cell-' + td.dataset.cell);
    if (p) { p.hidden = false; p.scrollIntoView({block:'nearest'}); }
  });
});
"#;

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}<script>{SCRIPT}</script>\n</body>\n</html>\n",
        esc(title)
    )
}

/// One image with a caption; the thumbnail, or why there is none.
fn figure(o: &mut String, image: ImageRef, caption: &str, thumbs: &HashMap<ImageRef, Thumb>) {
    let path = image.path.as_str();
    let _ = write!(o, "<figure>");
    match thumbs.get(&image) {
        Some(Thumb::Image(uri)) => {
            let _ = write!(o, "<img src=\"{uri}\" alt=\"{}\">", esc(path));
        }
        Some(Thumb::Missing(why)) => {
            let _ = write!(o, "<div class=\"missing\">{}</div>", esc(why));
        }
        None => {
            let _ = write!(
                o,
                "<div class=\"missing\">no thumbnail ({MAX_THUMBNAILS} per report)</div>"
            );
        }
    }
    let _ = writeln!(
        o,
        "<figcaption>{}<br>{}</figcaption></figure>",
        caption,
        esc(path)
    );
}

/// Accuracy and macro-F1 of always predicting the most frequent training class.
fn majority_baseline(m: &Metrics, train_counts: &[usize]) -> Option<(String, f64, f64)> {
    let (maj, _) = train_counts
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))?;
    let n = m.summary.n;
    let support = m.per_class.get(maj)?.support;
    let acc = support as f64 / n.max(1) as f64;
    // Only the majority class is ever predicted: its F1 is 2p/(1+p) with p its
    // share; every other class with support has F1 0.
    let present = m
        .per_class
        .iter()
        .enumerate()
        .filter(|(i, c)| c.support > 0 || *i == maj)
        .count();
    let f1 = if acc > 0.0 {
        2.0 * acc / (1.0 + acc)
    } else {
        0.0
    };
    Some((m.class_names[maj].clone(), acc, f1 / present.max(1) as f64))
}

/// The report of a head: `outcome` is the fit (None for `eval`), `m` the
/// metrics shown (the test set when there is one).
pub fn head_report(
    ctx: &Context,
    outcome: Option<&FitOutcome>,
    m: &Metrics,
    thumbs: &HashMap<ImageRef, Thumb>,
) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "<h1>{}</h1>", esc(&ctx.title));
    summary(&mut o, ctx, outcome, m);
    sweep(&mut o, outcome);
    per_class(&mut o, m);
    let plan = plan(m);
    confusion(&mut o, m, &plan, thumbs);
    mistakes(&mut o, m, &plan, thumbs);
    calibration(&mut o, m);
    page(&ctx.title, &o)
}

fn summary(o: &mut String, ctx: &Context, outcome: Option<&FitOutcome>, m: &Metrics) {
    let _ = writeln!(o, "<section id=\"summary\">\n<h2>Summary</h2>\n<table>");
    let row = |o: &mut String, k: &str, v: String| {
        let _ = writeln!(
            o,
            "<tr><th class=\"l\">{k}</th><td class=\"l\">{v}</td></tr>"
        );
    };
    row(o, "dataset", esc(&ctx.dataset));
    row(o, "backbone", esc(&ctx.backbone));
    if let Some(f) = outcome {
        let s = &f.split;
        row(
            o,
            "split",
            format!(
                "{} train rows ({} images), {} val, {} test",
                s.train_rows, s.train_images, s.val_rows, s.test_rows
            ),
        );
        if let Some(sel) = f.sweep.iter().find(|r| r.selected) {
            let mut head = format!("{:?}", f.head.kind()).to_lowercase();
            if let Some(c) = sel.c {
                let _ = write!(head, ", C = {c}");
            }
            if let Some(h) = sel.hidden {
                let _ = write!(head, ", {h} hidden units");
            }
            let _ = write!(head, " (selected by validation {})", f.select_by);
            row(o, "head", esc(&head));
        }
    }
    let _ = writeln!(o, "</table>");
    let _ = writeln!(
        o,
        "<table id=\"headline\"><tr><th class=\"l\">set</th><th>images</th><th>accuracy</th><th>balanced</th><th>macro-F1</th><th>log-loss</th></tr>"
    );
    let mut sets: Vec<&Metrics> = Vec::new();
    if let Some(f) = outcome {
        sets.push(&f.val_metrics);
        sets.extend(&f.test_metrics);
    } else {
        sets.push(m);
    }
    for s in &sets {
        let _ = writeln!(
            o,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.4}</td><td>{:.4}</td></tr>",
            esc(&s.set),
            s.summary.n,
            pct(s.summary.accuracy),
            pct(s.summary.balanced_accuracy),
            s.summary.macro_f1,
            s.summary.log_loss
        );
    }
    let known = outcome.is_some() || ctx.train_class_counts.len() == m.class_names.len();
    let train_counts: Vec<usize> = match outcome {
        Some(f) => f.split.per_class.iter().map(|c| c.train).collect(),
        None if known => ctx.train_class_counts.clone(),
        None => m.per_class.iter().map(|c| c.support).collect(),
    };
    if let Some((class, acc, f1)) = majority_baseline(m, &train_counts) {
        let _ = writeln!(
            o,
            "<tr class=\"baseline\"><td class=\"l\">majority baseline on {} (always “{}”, {})</td><td>{}</td><td>{}</td><td>{}</td><td>{f1:.4}</td><td>-</td></tr>",
            esc(&m.set),
            esc(&class),
            if known {
                "the most frequent training class"
            } else {
                "the most frequent class of this set: optimistic"
            },
            m.summary.n,
            pct(acc),
            // Balanced accuracy: recall 1 on that class (if it has rows here), 0 elsewhere.
            pct(if acc > 0.0 {
                1.0 / m.per_class.iter().filter(|c| c.support > 0).count().max(1) as f64
            } else {
                0.0
            }),
        );
    }
    let _ = writeln!(o, "</table>\n</section>");
}

fn sweep(o: &mut String, outcome: Option<&FitOutcome>) {
    let _ = writeln!(o, "<section id=\"sweep\">\n<h2>Sweep</h2>");
    match outcome {
        Some(f) if !f.sweep.is_empty() => {
            let labels: Vec<String> = f
                .sweep
                .iter()
                .map(|r| match (r.c, r.hidden) {
                    (Some(c), Some(h)) => format!("C={c} h={h}"),
                    (Some(c), None) => format!("C={c}"),
                    (None, Some(h)) => format!("h={h}"),
                    (None, None) => "-".into(),
                })
                .collect();
            let sel = f.sweep.iter().position(|r| r.selected);
            let loss: Vec<f64> = f.sweep.iter().map(|r| r.val_log_loss).collect();
            let acc: Vec<f64> = f.sweep.iter().map(|r| 100.0 * r.val_accuracy).collect();
            o.push_str(&chart::line(
                "validation log-loss",
                &labels,
                &loss,
                sel,
                "#c0392b",
                (0.0, f64::INFINITY),
            ));
            o.push_str(&chart::line(
                "validation accuracy (%)",
                &labels,
                &acc,
                sel,
                "#2471a3",
                (0.0, 100.0),
            ));
        }
        _ => {
            let _ = writeln!(
                o,
                "<p class=\"note\">No sweep: this report evaluates a saved head (see the report of its fit).</p>"
            );
        }
    }
    let _ = writeln!(o, "</section>");
}

fn per_class(o: &mut String, m: &Metrics) {
    let _ = writeln!(
        o,
        "<section id=\"per-class\">\n<h2>Per class ({})</h2>\n<table><tr><th class=\"l\">class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>",
        esc(&m.set)
    );
    for c in &m.per_class {
        let _ = writeln!(
            o,
            "<tr><td class=\"l\">{}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td>{}</td></tr>",
            esc(&c.class),
            c.precision,
            c.recall,
            c.f1,
            c.support
        );
    }
    let _ = writeln!(o, "</table>\n</section>");
}

/// Classes up to which the confusion matrix is drawn whole; beyond, its most
/// confused pairs are listed.
const HTML_MATRIX_MAX_CLASSES: usize = 60;

fn confusion(o: &mut String, m: &Metrics, plan: &Plan, thumbs: &HashMap<ImageRef, Thumb>) {
    let k = m.class_names.len();
    let _ = writeln!(
        o,
        "<section id=\"confusion\">\n<h2>Confusion matrix ({}, {} images)</h2>\n<p class=\"note\">Rows: true class; columns: predicted. Click a cell to see its images.</p>",
        esc(&m.set),
        m.summary.n
    );
    let counts: HashMap<(usize, usize), usize> = m
        .confusion_cells
        .iter()
        .map(|c| ((c[0], c[1]), c[2]))
        .collect();
    let cell = |o: &mut String, t: usize, p: usize, n: usize, share: f64| {
        let (r, g, b) = (
            (255.0 - share * 225.0) as u8,
            (255.0 - share * 170.0) as u8,
            (255.0 - share * 80.0) as u8,
        );
        let color = if share > 0.5 { "#fff" } else { "#000" };
        let _ = write!(
            o,
            "<td data-cell=\"{t}-{p}\" data-count=\"{n}\" style=\"background:#{r:02x}{g:02x}{b:02x};color:{color}\" title=\"{} → {}: {n}\">{n}</td>",
            esc(&m.class_names[t]),
            esc(&m.class_names[p])
        );
    };
    let support: Vec<usize> = m.per_class.iter().map(|c| c.support).collect();
    if k <= HTML_MATRIX_MAX_CLASSES {
        let _ = write!(
            o,
            "<table class=\"cm\"><tr><th class=\"l\">true \\ predicted</th>"
        );
        for n in &m.class_names {
            let _ = write!(o, "<th>{}</th>", esc(n));
        }
        let _ = writeln!(o, "</tr>");
        for (t, (name, &sup)) in m.class_names.iter().zip(&support).enumerate() {
            let _ = write!(o, "<tr><th class=\"l\">{}</th>", esc(name));
            for p in 0..k {
                let n = counts.get(&(t, p)).copied().unwrap_or(0);
                cell(o, t, p, n, n as f64 / sup.max(1) as f64);
            }
            let _ = writeln!(o, "</tr>");
        }
        let _ = writeln!(o, "</table>");
    } else {
        let _ = writeln!(
            o,
            "<p class=\"note\">{k} classes: the 50 most confused pairs.</p><table class=\"cm\"><tr><th class=\"l\">true</th><th class=\"l\">predicted</th><th>count</th></tr>"
        );
        for [t, p, n] in m.most_confused(50) {
            let _ = write!(
                o,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td>",
                esc(&m.class_names[t]),
                esc(&m.class_names[p])
            );
            cell(o, t, p, n, n as f64 / support[t].max(1) as f64);
            let _ = writeln!(o, "</tr>");
        }
        let _ = writeln!(o, "</table>");
    }
    let clickable: Option<HashSet<(u32, u32)>> = (k > HTML_MATRIX_MAX_CLASSES).then(|| {
        m.most_confused(50)
            .iter()
            .map(|c| (c[0] as u32, c[1] as u32))
            .collect()
    });
    for (&(t, p), rows) in &plan.cells {
        if clickable.as_ref().is_some_and(|c| !c.contains(&(t, p))) {
            continue;
        }
        let _ = writeln!(
            o,
            "<div class=\"cell-panel\" id=\"cell-{t}-{p}\" hidden><h3>true {} → predicted {} ({} shown of {})</h3><div class=\"grid\">",
            esc(&m.class_names[t as usize]),
            esc(&m.class_names[p as usize]),
            rows.len(),
            counts.get(&(t as usize, p as usize)).copied().unwrap_or(0)
        );
        for &i in rows {
            let r = &m.predictions[i];
            let image = ImageRef::new(&r.path, &r.content_hash);
            figure(o, image, &format!("p = {:.3}", r.confidence), thumbs);
        }
        let _ = writeln!(o, "</div></div>");
    }
    let _ = writeln!(o, "</section>");
}

fn mistakes(o: &mut String, m: &Metrics, plan: &Plan, thumbs: &HashMap<ImageRef, Thumb>) {
    let _ = writeln!(
        o,
        "<section id=\"mistakes\">\n<h2>Most confident mistakes ({})</h2>\n<div class=\"grid\">",
        esc(&m.set)
    );
    if plan.mistakes.is_empty() {
        let _ = writeln!(o, "<p class=\"note\">No mistakes.</p>");
    }
    for &i in &plan.mistakes {
        let r = &m.predictions[i];
        let caption = format!(
            "true <b>{}</b><br>predicted <b class=\"bad\">{}</b> ({:.3})",
            esc(&m.class_names[r.true_class as usize]),
            esc(&m.class_names[r.predicted as usize]),
            r.confidence
        );
        figure(o, ImageRef::new(&r.path, &r.content_hash), &caption, thumbs);
    }
    let _ = writeln!(o, "</div>\n</section>");
}

fn calibration(o: &mut String, m: &Metrics) {
    let c = &m.calibration;
    let _ = writeln!(
        o,
        "<section id=\"calibration\">\n<h2>Calibration ({})</h2>\n<p>Expected calibration error: <b>{:.4}</b> ({} bins of the top probability).</p>",
        esc(&m.set),
        c.ece,
        c.bins.len()
    );
    o.push_str(&chart::reliability(&c.bins));
    let _ = writeln!(o, "</section>");
}

/// The audit page: probable label errors and duplicates across classes.
pub fn audit_report(ctx: &Context, a: &AuditReport, thumbs: &HashMap<ImageRef, Thumb>) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "<h1>{}</h1>", esc(&ctx.title));
    let _ = writeln!(
        o,
        "<section id=\"summary\">\n<h2>Summary</h2>\n<table>\
         <tr><th class=\"l\">dataset</th><td class=\"l\">{}</td></tr>\
         <tr><th class=\"l\">backbone</th><td class=\"l\">{}</td></tr>\
         <tr><th class=\"l\">images audited</th><td class=\"l\">{} ({} folds, out-of-fold accuracy {})</td></tr>\
         <tr><th class=\"l\">probable label errors</th><td class=\"l\">{}</td></tr>\
         <tr><th class=\"l\">duplicates across classes</th><td class=\"l\">{} (cosine ≥ {})</td></tr>\
         </table>\n<p class=\"note\">Confident learning (Northcutt et al., 2021) on out-of-fold probabilities: an image is flagged when another class's probability reaches that class's mean self-confidence; ranked by the probability of the given label, lowest first.</p>\n</section>",
        esc(&ctx.dataset),
        esc(&ctx.backbone),
        a.rows,
        a.folds,
        pct(a.oof_accuracy),
        a.issues.len(),
        a.duplicates.len(),
        a.near_dup_threshold
    );
    let _ = writeln!(
        o,
        "<section id=\"issues\">\n<h2>Probable label errors (top {} of {})</h2>\n<div class=\"grid\">",
        a.issues.len().min(ISSUES_SHOWN),
        a.issues.len()
    );
    for i in a.issues.iter().take(ISSUES_SHOWN) {
        let caption = format!(
            "given <b class=\"bad\">{}</b> ({:.3})<br>suggested <b>{}</b> ({:.3})",
            esc(&i.given),
            i.p_given,
            esc(&i.suggested),
            i.p_suggested
        );
        let image = ImageRef::new(&i.path, &i.content_hash);
        figure(&mut o, image, &caption, thumbs);
    }
    let _ = writeln!(o, "</div>\n</section>");
    let _ = writeln!(
        o,
        "<section id=\"duplicates\">\n<h2>Duplicates across classes ({} of {})</h2>",
        a.duplicates.len().min(DUPLICATES_SHOWN),
        a.duplicates.len()
    );
    if a.duplicates.is_empty() {
        let _ = writeln!(o, "<p class=\"note\">None found.</p>");
    }
    for d in a.duplicates.iter().take(DUPLICATES_SHOWN) {
        let kind = match d.kind {
            headstart_fit::LeakKind::Exact => "same bytes".to_string(),
            headstart_fit::LeakKind::Near => format!("cosine {:.3}", d.cosine),
        };
        let _ = writeln!(o, "<div class=\"grid dup\">");
        figure(
            &mut o,
            ImageRef::new(&d.path, &d.content_hash),
            &format!("<b>{}</b> ({kind})", esc(&d.label)),
            thumbs,
        );
        figure(
            &mut o,
            ImageRef::new(&d.other_path, &d.other_content_hash),
            &format!("<b>{}</b>", esc(&d.other_label)),
            thumbs,
        );
        let _ = writeln!(o, "</div>");
    }
    let _ = writeln!(o, "</section>");
    if a.classes.len() > HTML_MATRIX_MAX_CLASSES {
        confident_pairs(&mut o, a);
        return page(&ctx.title, &o);
    }
    let _ = writeln!(
        o,
        "<section id=\"confident-joint\">\n<h2>Confident joint (given label × confident class)</h2>\n<table><tr><th class=\"l\">given \\ confident</th>"
    );
    for c in &a.classes {
        let _ = write!(o, "<th>{}</th>", esc(c));
    }
    let _ = writeln!(o, "</tr>");
    for (i, row) in a.confident_joint.iter().enumerate() {
        let _ = write!(o, "<tr><th class=\"l\">{}</th>", esc(&a.classes[i]));
        for v in row {
            let _ = write!(o, "<td>{v}</td>");
        }
        let _ = writeln!(o, "</tr>");
    }
    let _ = writeln!(o, "</table>\n</section>");
    page(&ctx.title, &o)
}

/// The confident joint's largest off-diagonal cells, for many classes.
fn confident_pairs(o: &mut String, a: &AuditReport) {
    let mut cells: Vec<(usize, usize, usize)> = a
        .confident_joint
        .iter()
        .enumerate()
        .flat_map(|(i, row)| row.iter().enumerate().map(move |(j, &n)| (i, j, n)))
        .filter(|&(i, j, n)| i != j && n > 0)
        .collect();
    cells.sort_by(|x, y| y.2.cmp(&x.2).then((x.0, x.1).cmp(&(y.0, y.1))));
    let _ = writeln!(
        o,
        "<section id=\"confident-joint\">\n<h2>Confident joint: the 50 largest off-diagonal cells of {} classes</h2>\n<table><tr><th class=\"l\">given</th><th class=\"l\">confident class</th><th>images</th></tr>",
        a.classes.len()
    );
    for (i, j, n) in cells.into_iter().take(50) {
        let _ = writeln!(
            o,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{n}</td></tr>",
            esc(&a.classes[i]),
            esc(&a.classes[j])
        );
    }
    let _ = writeln!(o, "</table>\n</section>");
}

#[cfg(test)]
mod tests;

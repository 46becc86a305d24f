use super::*;
use scraper::{Html, Selector};

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn metrics(n: usize) -> Metrics {
    let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let mut y = Vec::new();
    let mut probs = Vec::new();
    let mut paths = Vec::new();
    for i in 0..n {
        let t = (i % 3) as u32;
        // Every fourth row is predicted as the next class.
        let p = if i % 4 == 0 { (t + 1) % 3 } else { t };
        let conf = 0.5 + (i % 7) as f32 * 0.07;
        let mut row = [(1.0 - conf) / 2.0; 3];
        row[p as usize] = conf;
        y.push(t);
        probs.extend_from_slice(&row);
        paths.push((format!("img{i}.png"), format!("hash{i}")));
    }
    let rows: Vec<(&str, &str)> = paths
        .iter()
        .map(|(p, h)| (p.as_str(), h.as_str()))
        .collect();
    Metrics::compute("test", &names, &y, &probs, &rows, 10)
}

fn ctx() -> Context {
    Context {
        title: "t <&> report".into(),
        dataset: "cache".into(),
        backbone: "toy".into(),
        train_class_counts: vec![],
    }
}

#[test]
fn thumbnails_are_capped_and_mistakes_come_first() {
    let m = metrics(1000);
    let paths: Vec<String> = head_thumbnail_images(&m)
        .into_iter()
        .map(|i| i.path)
        .collect();
    assert!(paths.len() <= MAX_THUMBNAILS);
    let wrong: HashSet<&str> = m
        .predictions
        .iter()
        .filter(|p| p.true_class != p.predicted)
        .map(|p| p.path.as_str())
        .collect();
    assert!(
        paths[..MISTAKES_SHOWN]
            .iter()
            .all(|p| wrong.contains(p.as_str()))
    );
    // Every cell shown has its examples among the planned paths.
    assert_eq!(paths.iter().collect::<HashSet<_>>().len(), paths.len());
}

#[test]
fn the_page_has_every_section_and_matches_the_metrics() {
    let m = metrics(120);
    let dot = vec![255u8; 4 * 4 * 3];
    let uri = thumbnail_uri(4, 4, &dot, THUMB_SIDE).unwrap();
    let paths = head_thumbnail_images(&m);
    let mut thumbs: HashMap<ImageRef, Thumb> = paths
        .iter()
        .map(|p| (p.clone(), Thumb::Image(uri.clone())))
        .collect();
    thumbs.insert(paths[0].clone(), Thumb::Missing("file is gone".into()));
    let html = head_report(&ctx(), None, &m, &thumbs);
    let doc = Html::parse_document(&html);
    for id in [
        "summary",
        "sweep",
        "per-class",
        "confusion",
        "mistakes",
        "calibration",
    ] {
        assert_eq!(
            doc.select(&sel(&format!("section#{id}"))).count(),
            1,
            "{id}"
        );
    }
    assert_eq!(
        doc.select(&sel("title"))
            .next()
            .unwrap()
            .text()
            .collect::<String>(),
        "t <&> report"
    );
    // Confusion cells carry the metrics' counts.
    for c in &m.confusion_cells {
        let td = doc
            .select(&sel(&format!("td[data-cell=\"{}-{}\"]", c[0], c[1])))
            .next()
            .unwrap();
        assert_eq!(
            td.value().attr("data-count"),
            Some(c[2].to_string().as_str())
        );
    }
    // The gone file says so; no network references anywhere.
    assert!(html.contains("file is gone"));
    // Only the SVG namespace names a URL; nothing is fetched.
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http") && !html.contains("https://")
    );
    let imgs: Vec<_> = doc.select(&sel("img")).collect();
    assert!(!imgs.is_empty());
    assert!(imgs.iter().all(|i| {
        i.value()
            .attr("src")
            .unwrap()
            .starts_with("data:image/jpeg;base64,")
    }));
    assert_eq!(
        doc.select(&sel("#reliability rect.bin")).count(),
        m.calibration.bins.iter().filter(|b| b.count > 0).count()
    );
}

#[test]
fn bad_pixel_buffers_are_errors() {
    let e = thumbnail_uri(10, 10, &[0; 5], 96).unwrap_err();
    assert!(e.to_string().contains("10x10"), "{e}");
}

/// Regression: two inputs with an image at the same relative path (train/ and
/// test/ both holding cat/001.jpg) each show their own thumbnail.
#[test]
fn images_at_the_same_path_in_two_inputs_keep_their_own_thumbnails() {
    let names: Vec<String> = ["cat", "dog"].iter().map(|s| s.to_string()).collect();
    let probs = [0.2, 0.8, 0.3, 0.7];
    let rows = [("cat/001.jpg", "hash-a"), ("cat/001.jpg", "hash-b")];
    let m = Metrics::compute("test", &names, &[0, 0], &probs, &rows, 10);
    let images = head_thumbnail_images(&m);
    assert_eq!(images.len(), 2, "{images:?}");
    let uri = |v: u8| thumbnail_uri(2, 2, &[v; 12], THUMB_SIDE).unwrap();
    let thumbs: HashMap<ImageRef, Thumb> = images
        .iter()
        .map(|i| {
            let v = if i.content_hash == "hash-a" { 10 } else { 240 };
            (i.clone(), Thumb::Image(uri(v)))
        })
        .collect();
    let html = head_report(&ctx(), None, &m, &thumbs);
    assert!(html.contains(&uri(10)) && html.contains(&uri(240)));
}

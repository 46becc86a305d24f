//! Issue #23: images in object storage, against a real S3 API. `moto_server`
//! (moto[server] from PyPI, in the test venv) runs on a free loopback port,
//! started and stopped (by process group) by each test; headstart talks to it
//! through a loopback proxy written here, which counts requests and the bytes
//! of each response and can fail one request in ten (a 500, a connection
//! dropped before the answer, or a body cut short).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{self, describe};

const KEY_ID: &str = "AKIAHEADSTARTTEST";
/// Distinctive values, grepped for in every artifact.
const SECRET: &str = "hsTestSecret-7c0ffee-do-not-leak";
const TOKEN: &str = "hsTestSessionToken-5ca1ab1e-do-not-leak";

fn python() -> PathBuf {
    common::python_with(&["moto[server]==5.2.6", "boto3"])
}

/// A free loopback port (bound, read and released: the server takes it next).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A `moto_server` on a loopback port, in its own process group (stopped
/// with it when dropped).
struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    fn start(env: &[(&str, &str)]) -> Moto {
        use std::os::unix::process::CommandExt;
        let py = python();
        let port = free_port();
        let child = Command::new(py.with_file_name("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start moto_server");
        let moto = Moto { child, port };
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "moto_server did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// Runs `script` (Python with boto3) with `args` as JSON on stdin.
fn boto(script: &str, args: serde_json::Value) -> String {
    let mut child = Command::new(python())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(args.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "boto3 script failed:\n{}",
        describe(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Creates `bucket` and uploads `files` (key, local file) with boto3.
fn upload(endpoint: &str, bucket: &str, files: &[(String, PathBuf)]) {
    let script = r#"
import boto3, json, sys
a = json.load(sys.stdin)
s3 = boto3.client("s3", endpoint_url=a["endpoint"], region_name="us-east-1",
                  aws_access_key_id=a["key"], aws_secret_access_key=a["secret"])
if a["bucket"] not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
    s3.create_bucket(Bucket=a["bucket"])
for key, path in a["files"]:
    s3.upload_file(path, a["bucket"], key)
"#;
    boto(
        script,
        serde_json::json!({
            "endpoint": endpoint, "bucket": bucket, "key": KEY_ID, "secret": SECRET,
            "files": files.iter().map(|(k, p)| (k.clone(), p.display().to_string())).collect::<Vec<_>>(),
        }),
    );
}

// ------------------------------------------------------------------ proxy

/// One request that went through the proxy.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    status: u16,
    body_bytes: u64,
}

/// A loopback HTTP/1.1 proxy in front of `upstream`: one request per
/// connection (answers say `Connection: close`), each recorded; with faults
/// on, every tenth request fails in one of three ways, in turn.
struct Proxy {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    faults: Arc<AtomicBool>,
    injected: Arc<AtomicU64>,
}

impl Proxy {
    fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let faults = Arc::new(AtomicBool::new(false));
        let injected = Arc::new(AtomicU64::new(0));
        let count = Arc::new(AtomicU64::new(0));
        let (s, f, inj) = (seen.clone(), faults.clone(), injected.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (s, f, inj, count) = (s.clone(), f.clone(), inj.clone(), count.clone());
                std::thread::spawn(move || {
                    let _ = serve(client, upstream, &s, &f, &inj, &count);
                });
            }
        });
        Proxy {
            port,
            seen,
            faults,
            injected,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The requests seen since the last call.
    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// Reads an HTTP head (up to the blank line) and returns it with what
/// followed it in the same reads.
fn read_head(s: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(at + 4);
            return Ok(Some((String::from_utf8_lossy(&buf).into_owned(), rest)));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The head with its `Connection` header replaced by `Connection: close`.
fn closing(head: &str) -> String {
    let mut lines: Vec<&str> = head
        .trim_end()
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    lines.push("Connection: close");
    format!("{}\r\n\r\n", lines.join("\r\n"))
}

fn serve(
    mut client: TcpStream,
    upstream: u16,
    seen: &Mutex<Vec<Seen>>,
    faults: &AtomicBool,
    injected: &AtomicU64,
    count: &AtomicU64,
) -> std::io::Result<()> {
    let Some((head, mut body)) = read_head(&mut client)? else {
        return Ok(());
    };
    let mut first = head.split_whitespace();
    let (method, target) = (
        first.next().unwrap_or_default().to_string(),
        first.next().unwrap_or_default().to_string(),
    );
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while body.len() < length {
        let mut chunk = vec![0u8; length - body.len()];
        let n = client.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let n = count.fetch_add(1, Ordering::SeqCst) + 1;
    let fault = faults.load(Ordering::SeqCst) && n.is_multiple_of(10);
    let record = |status: u16, body_bytes: u64| {
        seen.lock().unwrap().push(Seen {
            method: method.clone(),
            target: target.clone(),
            status,
            body_bytes,
        })
    };
    if fault && (n / 10).is_multiple_of(3) {
        injected.fetch_add(1, Ordering::SeqCst);
        record(500, 0);
        let msg =
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        return client.write_all(msg.as_bytes());
    }
    if fault && (n / 10) % 3 == 1 {
        injected.fetch_add(1, Ordering::SeqCst);
        record(0, 0);
        return Ok(()); // dropped before any answer
    }
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    up.write_all(closing(&head).as_bytes())?;
    up.write_all(&body)?;
    let Some((rhead, mut rbody)) = read_head(&mut up)? else {
        return Ok(());
    };
    up.read_to_end(&mut rbody)?;
    let status = rhead
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if fault {
        // The answer's head and half its body, then the connection drops.
        injected.fetch_add(1, Ordering::SeqCst);
        record(status, (rbody.len() / 2) as u64);
        client.write_all(closing(&rhead).as_bytes())?;
        return client.write_all(&rbody[..rbody.len() / 2]);
    }
    record(status, rbody.len() as u64);
    client.write_all(closing(&rhead).as_bytes())?;
    client.write_all(&rbody)
}

// ------------------------------------------------------------------ data

/// Files of a test: class folders, a manifest, tar shards and image Parquet
/// of the same images, on disk; and the same in a bucket.
struct Data {
    dir: PathBuf,
    files: Vec<(String, Vec<u8>)>,
}

impl Data {
    fn new(name: &str, per_class: usize) -> Data {
        let dir = common::scratch(name);
        let folders = dir.join("local/photos");
        common::sample_subset(&folders, per_class);
        let mut files = Vec::new();
        for class in std::fs::read_dir(&folders).unwrap() {
            let class = class.unwrap().path();
            for f in std::fs::read_dir(&class).unwrap() {
                let f = f.unwrap().path();
                let rel = f
                    .strip_prefix(&folders)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                files.push((rel, std::fs::read(&f).unwrap()));
            }
        }
        files.sort();
        let d = Data { dir, files };
        // The manifest names the class folders' files.
        let mut csv = String::from("path,label\n");
        for (rel, _) in &d.files {
            csv.push_str(&format!(
                "photos/{rel},{}\n",
                rel.split('/').next().unwrap()
            ));
        }
        std::fs::write(d.local("train.csv"), csv).unwrap();
        let shards = d.local("shards");
        std::fs::create_dir_all(&shards).unwrap();
        for (n, chunk) in d.files.chunks(7).enumerate() {
            let mut b = tar::Builder::new(
                std::fs::File::create(shards.join(format!("{n:05}.tar"))).unwrap(),
            );
            for (rel, bytes) in chunk {
                let key = rel.rsplit_once('.').unwrap().0;
                for (name, data) in [
                    (rel.clone(), bytes.as_slice()),
                    (
                        format!("{key}.cls"),
                        rel.split('/').next().unwrap().as_bytes(),
                    ),
                ] {
                    let mut h = tar::Header::new_gnu();
                    h.set_size(data.len() as u64);
                    h.set_mode(0o644);
                    h.set_cksum();
                    b.append_data(&mut h, name, data).unwrap();
                }
            }
            b.finish().unwrap();
        }
        std::fs::create_dir_all(d.local("hf")).unwrap();
        write_image_parquet(&d.local("hf/train-00000-of-00001.parquet"), &d.files);
        d
    }

    fn local(&self, rel: &str) -> PathBuf {
        self.dir.join("local").join(rel)
    }

    /// Every local file, keyed as in the bucket.
    fn objects(&self) -> Vec<(String, PathBuf)> {
        let root = self.dir.join("local");
        common::walk(&root)
            .into_iter()
            .map(|p| {
                let key = p
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                (key, p)
            })
            .collect()
    }

    fn count(&self) -> usize {
        self.files.len()
    }

    fn tars(&self) -> usize {
        self.count().div_ceil(7)
    }
}

/// `image: struct<bytes, path>`, `label`, 8 rows a row group.
fn write_image_parquet(path: &Path, files: &[(String, Vec<u8>)]) {
    use arrow_array::{ArrayRef, BinaryArray, RecordBatch, StringArray, StructArray};
    use arrow_schema::{DataType, Field};
    let bytes: ArrayRef = Arc::new(BinaryArray::from_iter_values(files.iter().map(|f| &f.1)));
    let names: ArrayRef = Arc::new(StringArray::from_iter_values(files.iter().map(|f| &f.0)));
    let image = StructArray::from(vec![
        (Arc::new(Field::new("bytes", DataType::Binary, true)), bytes),
        (Arc::new(Field::new("path", DataType::Utf8, true)), names),
    ]);
    let labels: ArrayRef = Arc::new(StringArray::from_iter_values(
        files.iter().map(|f| f.0.split('/').next().unwrap()),
    ));
    let batch =
        RecordBatch::try_from_iter([("image", Arc::new(image) as ArrayRef), ("label", labels)])
            .unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(8))
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(path).unwrap(),
        batch.schema(),
        Some(props),
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

// ------------------------------------------------------------------- runs

/// `headstart ARGS` with the test's credentials (and nothing of the
/// caller's AWS settings).
fn headstart(args: &[&str]) -> Output {
    let mut c = common::headstart();
    for var in [
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT",
        "AWS_ENDPOINT_URL_S3",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CONFIG_FILE",
    ] {
        c.env_remove(var);
    }
    c.env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_SESSION_TOKEN", TOKEN)
        .env("AWS_REGION", "us-east-1")
        .env("HOME", "/nonexistent-home")
        .args(args)
        .output()
        .expect("run headstart")
}

/// `headstart -q extract INPUT --out OUT --json --endpoint E EXTRA`: exit 0
/// and its summary.
fn extract(input: &str, out: &Path, endpoint: &str, extra: &[&str]) -> serde_json::Value {
    let out_s = out.to_str().unwrap();
    let mut args = vec!["-q", "extract", input, "--out", out_s, "--json"];
    if !endpoint.is_empty() {
        args.extend(["--endpoint", endpoint]);
    }
    args.extend(extra);
    let o = headstart(&args);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(&o)))
}

type Rows = BTreeMap<(String, String), (Option<String>, Option<String>, String, Vec<f32>)>;

/// Live rows of a cache.
fn rows(cache: &Path) -> Rows {
    common::rows(cache)
}

/// The largest difference between the features of two caches with the same keys.
fn max_abs_diff(a: &Rows, b: &Rows) -> f32 {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "the same images"
    );
    let mut worst = 0f32;
    for (k, x) in a {
        let y = &b[k];
        assert_eq!((&x.0, &x.1, &x.2), (&y.0, &y.1, &y.2), "{k:?}");
        for (p, q) in x.3.iter().zip(&y.3) {
            worst = worst.max((p - q).abs());
        }
    }
    worst
}

/// Bytes of GET answers for image objects (images, tar shards, image Parquet).
fn image_bytes(seen: &[Seen]) -> u64 {
    seen.iter()
        .filter(|s| s.method == "GET" && matches!(s.status, 200 | 206))
        .filter(|s| {
            let path = s.target.split('?').next().unwrap_or_default();
            [".png", ".tar", ".parquet"]
                .iter()
                .any(|e| path.ends_with(e))
        })
        .map(|s| s.body_bytes)
        .sum()
}

/// The four inputs of [`Data`], as (name, local path, URL).
fn inputs(d: &Data, bucket: &str) -> Vec<(&'static str, PathBuf, String)> {
    vec![
        (
            "folders",
            d.local("photos"),
            format!("s3://{bucket}/photos/"),
        ),
        (
            "manifest",
            d.local("train.csv"),
            format!("s3://{bucket}/train.csv"),
        ),
        (
            "tars",
            d.local(&format!("shards/{{00000..{:05}}}.tar", d.tars() - 1)),
            format!("s3://{bucket}/shards/{{00000..{:05}}}.tar", d.tars() - 1),
        ),
        ("parquet", d.local("hf"), format!("s3://{bucket}/hf/")),
    ]
}

/// Issue #23 items 1, 3 and 5: class folders, a manifest of relative keys,
/// tar shards (a pattern) and image Parquet in a bucket give the features of
/// the same files on disk (max abs diff 0); a rerun downloads 0 bytes of
/// images; an object that changes is re-extracted alone.
#[test]
#[ignore = "slow tier: `just test-all`"]
fn a_bucket_gives_the_features_of_the_same_files_on_disk() {
    let d = Data::new("objstore-equal", 3);
    let moto = Moto::start(&[]);
    upload(&moto.endpoint(), "images", &d.objects());
    let proxy = Proxy::start(moto.port);
    for (name, local, url) in inputs(&d, "images") {
        let (c_local, c_bucket) = (d.dir.join(format!("{name}-local")), d.dir.join(name));
        extract(local.to_str().unwrap(), &c_local, "", &[]);
        proxy.take();
        let s = extract(&url, &c_bucket, &proxy.endpoint(), &[]);
        assert_eq!(
            (s["extracted"].as_u64(), s["failed"].as_u64()),
            (Some(d.count() as u64), Some(0)),
            "{name}: {s}"
        );
        let diff = max_abs_diff(&rows(&c_local), &rows(&c_bucket));
        assert_eq!(diff, 0.0, "{name}: features differ from the files on disk");
        assert!(image_bytes(&proxy.take()) > 0, "{name}");

        let again = extract(&url, &c_bucket, &proxy.endpoint(), &[]);
        assert_eq!(
            again["cached"].as_u64(),
            Some(d.count() as u64),
            "{name}: {again}"
        );
        let seen = proxy.take();
        assert_eq!(
            image_bytes(&seen),
            0,
            "{name}: a rerun downloaded images: {seen:?}"
        );
    }

    // One object changes: it alone is read and extracted again.
    let (rel, _) = &d.files[0];
    let replacement = d.dir.join("replacement.png");
    std::fs::write(&replacement, &d.files[1].1).unwrap();
    upload(
        &moto.endpoint(),
        "images",
        &[(format!("photos/{rel}"), replacement)],
    );
    let c = d.dir.join("folders");
    proxy.take();
    let s = extract("s3://images/photos/", &c, &proxy.endpoint(), &[]);
    assert_eq!(
        (s["extracted"].as_u64(), s["cached"].as_u64()),
        (Some(1), Some(d.count() as u64 - 1)),
        "{s}"
    );
    let seen = proxy.take();
    let read: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.method == "GET" && s.target.ends_with(".png"))
        .collect();
    assert_eq!(read.len(), 1, "{read:?}");
    assert!(read[0].target.ends_with(rel.as_str()), "{read:?}");
}

/// Issue #23 items 2 and 5: with one request in ten failing (a 500, a
/// connection dropped, a body cut short), every kind of input still gives
/// the full result, equal to a run without faults.
#[test]
#[ignore = "slow tier: `just test-all`"]
fn one_request_in_ten_failing_still_gives_the_full_result() {
    let d = Data::new("objstore-faults", 3);
    let moto = Moto::start(&[]);
    upload(&moto.endpoint(), "images", &d.objects());
    let proxy = Proxy::start(moto.port);
    for (name, local, url) in inputs(&d, "images") {
        let clean = d.dir.join(format!("{name}-clean"));
        extract(local.to_str().unwrap(), &clean, "", &[]);
        proxy.faults.store(true, Ordering::SeqCst);
        let c = d.dir.join(name);
        let s = extract(&url, &c, &proxy.endpoint(), &["--io-concurrency", "8"]);
        proxy.faults.store(false, Ordering::SeqCst);
        assert_eq!(
            (s["extracted"].as_u64(), s["failed"].as_u64()),
            (Some(d.count() as u64), Some(0)),
            "{name}: {s}"
        );
        assert_eq!(max_abs_diff(&rows(&clean), &rows(&c)), 0.0, "{name}");
    }
    assert!(
        proxy.injected.load(Ordering::SeqCst) >= 3,
        "faults were injected"
    );
}

/// Issue #23 item 4: with the server checking signatures (moto's IAM mode),
/// a wrong secret is one clear error before any work (no cache folder), and
/// the secret is in no output.
#[test]
#[ignore = "slow tier: `just test-all`"]
fn a_wrong_secret_is_one_clear_error_before_any_work() {
    let d = Data::new("objstore-auth", 1);
    // The first three requests (the IAM user, its key, its policy) need no
    // signature; every later one is checked.
    let moto = Moto::start(&[("INITIAL_NO_AUTH_ACTION_COUNT", "3")]);
    let script = r#"
import boto3, json, sys
a = json.load(sys.stdin)
iam = boto3.client("iam", endpoint_url=a["endpoint"], region_name="us-east-1",
                   aws_access_key_id="x", aws_secret_access_key="y")
iam.create_user(UserName="hs")
k = iam.create_access_key(UserName="hs")["AccessKey"]
iam.put_user_policy(UserName="hs", PolicyName="all", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
s3 = boto3.client("s3", endpoint_url=a["endpoint"], region_name="us-east-1",
                  aws_access_key_id=k["AccessKeyId"], aws_secret_access_key=k["SecretAccessKey"])
s3.create_bucket(Bucket="private")
for key, path in a["files"]:
    s3.upload_file(path, "private", key)
print(k["AccessKeyId"], k["SecretAccessKey"])
"#;
    let files: Vec<(String, PathBuf)> = d.objects();
    let out = boto(
        script,
        serde_json::json!({
            "endpoint": moto.endpoint(),
            "files": files.iter().map(|(k, p)| (k.clone(), p.display().to_string())).collect::<Vec<_>>(),
        }),
    );
    let (key, secret) = out.trim().split_once(' ').unwrap();
    let cache = d.dir.join("cache");
    let run = |secret: &str| {
        common::headstart()
            .args([
                "-q",
                "extract",
                "s3://private/photos/",
                "--out",
                cache.to_str().unwrap(),
            ])
            .args(["--endpoint", &moto.endpoint()])
            .env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_REGION", "us-east-1")
            .env("HOME", "/nonexistent-home")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .output()
            .unwrap()
    };
    let wrong = "hsWrongSecretValue0123456789abcdef";
    let o = run(wrong);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("s3://private/photos")
            && err.contains("SignatureDoesNotMatch")
            && err.contains("AWS_SECRET_ACCESS_KEY"),
        "{err}"
    );
    assert_eq!(
        err.trim()
            .lines()
            .filter(|l| l.starts_with("error"))
            .count(),
        1,
        "one error: {err}"
    );
    assert!(!err.contains(wrong) && !err.contains(secret), "{err}");
    assert!(!cache.exists(), "no work before the error");
    // The right secret works.
    let o = run(secret);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
}

/// Issue #23 item 4: extract (with errors: a missing object, faults), fit
/// (its report's thumbnails come from the bucket) and predict: the secret and
/// the session token are in no file they write and no line they print.
#[test]
#[ignore = "slow tier: `just test-all`"]
fn no_secret_in_any_artifact_or_message() {
    let d = Data::new("objstore-secret", 2);
    let moto = Moto::start(&[]);
    let mut objects = d.objects();
    let mut csv = std::fs::read_to_string(d.local("train.csv")).unwrap();
    csv.push_str("photos/bag/missing.png,bag\n");
    let manifest = d.dir.join("with-missing.csv");
    std::fs::write(&manifest, csv).unwrap();
    objects.push(("with-missing.csv".into(), manifest));
    upload(&moto.endpoint(), "images", &objects);
    let proxy = Proxy::start(moto.port);
    proxy.faults.store(true, Ordering::SeqCst);
    let cache = d.dir.join("cache");
    let (c, head) = (cache.to_str().unwrap(), d.dir.join("head"));
    let mut printed = Vec::new();
    let mut run = |args: &[&str], code: i32| {
        let o = headstart(args);
        assert_eq!(o.status.code(), Some(code), "{}", describe(&o));
        printed.push(o);
    };
    run(
        &[
            "extract",
            "s3://images/with-missing.csv",
            "--out",
            c,
            "--endpoint",
            &proxy.endpoint(),
        ],
        3,
    );
    run(&["fit", c, "--out", head.to_str().unwrap()], 0);
    let out = d.dir.join("predictions.csv");
    run(
        &[
            "predict",
            head.to_str().unwrap(),
            "s3://images/photos/bag/",
            "s3://images/photos/bag/nope.png",
            "--endpoint",
            &proxy.endpoint(),
            "--format",
            "csv",
            "--output",
            out.to_str().unwrap(),
        ],
        3,
    );
    // A wrong endpoint: its error, too.
    run(
        &[
            "extract",
            "s3://images/photos/",
            "--out",
            d.dir.join("c2").to_str().unwrap(),
            "--endpoint",
            "http://127.0.0.1:9",
        ],
        1,
    );
    let report = std::fs::read_to_string(head.join("report.html")).unwrap();
    assert!(
        report.contains("data:image/jpeg;base64"),
        "thumbnails from the bucket"
    );
    for o in &printed {
        for text in [&o.stdout, &o.stderr] {
            let text = String::from_utf8_lossy(text);
            assert!(
                !text.contains(SECRET) && !text.contains(TOKEN),
                "printed: {text}"
            );
        }
    }
    for file in common::walk(&d.dir) {
        if file.starts_with(d.dir.join("local")) {
            continue;
        }
        let bytes = std::fs::read(&file).unwrap();
        for secret in [SECRET, TOKEN] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds a credential",
                file.display()
            );
        }
    }
}

/// Issue #23 item 5: `kill -9` in the middle of an extract from a bucket,
/// then a rerun, equals one run (same rows and features, none twice).
#[test]
#[ignore = "slow tier: `just test-all`"]
fn kill_9_mid_run_then_rerun_equals_one_run() {
    let d = Data::new("objstore-kill", 20);
    let moto = Moto::start(&[]);
    upload(&moto.endpoint(), "images", &d.objects());
    let once = d.dir.join("once");
    extract("s3://images/photos/", &once, &moto.endpoint(), &[]);
    let cache = d.dir.join("killed");
    let mut child = common::headstart()
        .args([
            "-q",
            "extract",
            "s3://images/photos/",
            "--out",
            cache.to_str().unwrap(),
        ])
        .args([
            "--endpoint",
            &moto.endpoint(),
            "--flush-every",
            "16",
            "--batch-size",
            "8",
        ])
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1")
        .env("HOME", "/nonexistent-home")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let parts = cache.join("parts");
    while std::fs::read_dir(&parts)
        .map(|r| {
            r.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "parquet"))
                .count()
        })
        .unwrap_or(0)
        < 1
    {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no part was written"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let partial = rows(&cache).len();
    assert!(
        partial < d.count(),
        "killed before the end ({partial} rows)"
    );
    let s = extract("s3://images/photos/", &cache, &moto.endpoint(), &[]);
    assert_eq!(s["cached"].as_u64(), Some(partial as u64), "{s}");
    assert_eq!(max_abs_diff(&rows(&once), &rows(&cache)), 0.0);
}

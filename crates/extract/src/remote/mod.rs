//! Images where they live: INPUT in object storage (`s3://`, `gs://`,
//! `az://`, and `https://` for a single tar or Parquet file), read through the
//! Arrow project's `object_store` crate.
//!
//! A [`RemoteUrl`] names a prefix or an object in a [`Store`]; listing it gives
//! [`Object`]s with their size and version (ETag and size, as the store
//! reports them), so a rerun can tell an unchanged object from the cache alone.
//! Requests run on a small tokio runtime (`block_on`); the extract pipeline
//! keeps up to [`Access::io_concurrency`] of them in flight (`fetch`).
//!
//! Credentials come from the standard chains (`from_env` builders: variables,
//! web identity, container and instance metadata; AWS profile files here), and
//! never appear in an error: every store error goes through [`explain`], which
//! keeps the error's kind, the store's error code and message, and nothing of
//! the request (no headers, no signatures, no query strings), and blanks any
//! credential value it still finds.

pub(crate) mod fetch;
pub(crate) mod list;
pub(crate) mod read;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use object_store::path::Path as Key;
use object_store::{ClientOptions, ObjectMeta, ObjectStore, ObjectStoreScheme, RetryConfig};

use crate::ExtractError;

pub use fetch::{DEFAULT_IO_BUFFER, read_objects};

/// URL schemes read as object storage.
pub const SCHEMES: &[&str] = &[
    "s3", "s3a", "gs", "az", "azure", "abfs", "abfss", "adl", "https", "http",
];

/// How object stores are reached and read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Access {
    /// An S3-compatible endpoint (MinIO, Ceph, a local test server), or an
    /// Azure endpoint: requests go there path-style; `http://` is allowed
    /// when the endpoint says so. `None`: the SDK variables
    /// (`AWS_ENDPOINT_URL`, ...), then the provider's own endpoint.
    pub endpoint: Option<String>,
    /// Requests in flight at once while extracting.
    pub io_concurrency: usize,
}

impl Default for Access {
    fn default() -> Self {
        Access {
            endpoint: None,
            io_concurrency: default_io_concurrency(),
        }
    }
}

/// The most requests in flight that a run takes.
pub const MAX_IO_CONCURRENCY: usize = 1024;

/// Requests in flight by default: 16 per core, between 16 and 64 (object
/// stores answer in tens of milliseconds; decoding keeps each core busy).
pub fn default_io_concurrency() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (16 * cores).clamp(16, 64)
}

impl Access {
    /// Checks the settings: a parseable endpoint URL and 1 to
    /// [`MAX_IO_CONCURRENCY`] requests in flight.
    pub fn check(&self) -> Result<(), ExtractError> {
        if !(1..=MAX_IO_CONCURRENCY).contains(&self.io_concurrency) {
            return Err(ExtractError::Param {
                name: "io_concurrency",
                value: self.io_concurrency.to_string(),
                message: format!("must be between 1 and {MAX_IO_CONCURRENCY}"),
            });
        }
        if let Some(e) = &self.endpoint {
            let bad = |message: &str| ExtractError::Param {
                name: "endpoint",
                value: shown_url(e),
                message: message.into(),
            };
            let url =
                url::Url::parse(e).map_err(|_| bad("not a URL; e.g. http://127.0.0.1:9000"))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(bad("use an http:// or https:// URL with a host"));
            }
            if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
                return Err(bad(
                    "carries credentials or a query: give them through the environment",
                ));
            }
        }
        Ok(())
    }
}

/// Whether `text` is a URL of a scheme headstart reads as object storage.
pub fn is_url(text: &str) -> bool {
    text.split_once("://")
        .is_some_and(|(scheme, _)| SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(scheme)))
}

/// Whether `path` (as given on a command line) is an object-store URL.
pub fn is_remote(path: &Path) -> bool {
    path.to_str().is_some_and(is_url)
}

/// A bucket, container or web server, with its client.
pub struct Store {
    /// `scheme://authority` (for path-style https, with the bucket): object
    /// URLs are this, `/`, and the key.
    base: String,
    inner: Arc<dyn ObjectStore>,
    /// The endpoint it was built with (recorded with the input, never secret).
    endpoint: Option<String>,
}

// Debug prints the URL only: the client's own Debug may hold credentials.
impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.base)
    }
}

impl Store {
    /// The client.
    pub(crate) fn client(&self) -> &dyn ObjectStore {
        self.inner.as_ref()
    }

    /// The URL of `key` in this store.
    pub fn url_of(&self, key: &str) -> String {
        if key.is_empty() {
            format!("{}/", self.base)
        } else {
            format!("{}/{key}", self.base)
        }
    }
}

/// An object-store INPUT: a prefix (`s3://bucket/photos/`), an object
/// (`s3://bucket/data/train.csv`), or a shard pattern
/// (`s3://bucket/shards/{00000..00127}.tar`).
#[derive(Debug, Clone)]
pub struct RemoteUrl {
    /// The store.
    pub store: Arc<Store>,
    /// The key or prefix, without a leading or trailing `/`.
    pub key: String,
}

impl PartialEq for RemoteUrl {
    fn eq(&self, other: &Self) -> bool {
        self.store.base == other.store.base && self.key == other.key
    }
}

impl RemoteUrl {
    /// Parses an object-store URL and opens (or reuses) its store with the
    /// standard credential chain of its provider. URLs carrying credentials
    /// (`user:pass@`, a presigned query) are refused without echoing them.
    pub fn parse(text: &str, access: &Access) -> Result<RemoteUrl, ExtractError> {
        access.check()?;
        let shown = shown_url(text);
        let bad = |message: String| ExtractError::Remote {
            url: shown.clone(),
            message,
        };
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| bad("not a URL".into()))?;
        let scheme = scheme.to_ascii_lowercase();
        if rest.contains(['?', '#']) {
            return Err(bad(
                "a query string or fragment (a presigned URL, a SAS token?) is not read: headstart takes credentials from the environment; give the URL without it".into(),
            ));
        }
        let (authority, raw_key) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.is_empty() {
            return Err(bad(format!("no bucket: write {scheme}://BUCKET/PREFIX")));
        }
        let web = matches!(scheme.as_str(), "http" | "https");
        if web && authority.contains('@') {
            return Err(bad(
                "credentials in the URL (user@host) are not read: headstart takes credentials from the environment".into(),
            ));
        }
        let base_url = url::Url::parse(&format!("{scheme}://{authority}/"))
            .map_err(|e| bad(format!("not a valid URL: {e}")))?;
        let (kind, _) = ObjectStoreScheme::parse(&base_url)
            .map_err(|_| bad("not an object-store URL".into()))?;
        // Path-style cloud https URLs carry the bucket as the first segment.
        let (base, key) = match (web, &kind) {
            (true, k) if is_path_style(authority, k) => {
                let (bucket, key) = raw_key.split_once('/').unwrap_or((raw_key, ""));
                (format!("{scheme}://{authority}/{bucket}"), key)
            }
            _ => (format!("{scheme}://{authority}"), raw_key),
        };
        let key = key.trim_matches('/').to_string();
        let store = store_for(&scheme, &base, &kind, access).map_err(|e| bad(explain(&e)))?;
        Ok(RemoteUrl { store, key })
    }

    /// The URL, as shown in messages and recorded in the cache.
    pub fn shown(&self) -> String {
        self.store.url_of(&self.key)
    }

    /// The endpoint its store was built with.
    pub fn endpoint(&self) -> Option<&str> {
        self.store.endpoint.as_deref()
    }

    /// The prefix `key/` as a store path (the root when empty).
    pub(crate) fn prefix(&self) -> Option<Key> {
        (!self.key.is_empty()).then(|| Key::from(self.key.as_str()))
    }

    /// The URL of `key` in the same store.
    pub fn sibling(&self, key: impl Into<String>) -> RemoteUrl {
        RemoteUrl {
            store: self.store.clone(),
            key: key.into(),
        }
    }

    /// The object at this URL (size and version not known yet).
    pub fn object(&self) -> Object {
        Object {
            store: self.store.clone(),
            key: self.key.clone(),
            size: None,
            version: None,
        }
    }

    /// The last segment of the key.
    pub fn file_name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or(&self.key)
    }

    /// The key up to its last `/` (the "folder"; empty at the root).
    pub fn parent_key(&self) -> &str {
        self.key.rsplit_once('/').map_or("", |(p, _)| p)
    }

    /// Checks that the store answers with these credentials: one small LIST
    /// (a prefix) or HEAD (an object). A refused or unknown credential, a
    /// missing bucket, an unreachable endpoint: one clear error before any work.
    pub fn check_access(&self, is_object: bool) -> Result<(), ExtractError> {
        use futures::StreamExt;
        let client = self.store.client();
        let err = |e: object_store::Error| ExtractError::Remote {
            url: self.shown(),
            message: explain(&e),
        };
        if is_object && !self.key.contains('{') {
            block_on(object_store::ObjectStoreExt::head(
                client,
                &Key::from(self.key.as_str()),
            ))
            .map_err(err)?;
        } else {
            let prefix = self.prefix();
            let mut stream = client.list(prefix.as_ref());
            if let Some(Err(e)) = block_on(stream.next()) {
                return Err(err(e));
            }
        }
        Ok(())
    }
}

/// `s3.<region>.amazonaws.com` and the like: the bucket is in the path.
fn is_path_style(authority: &str, kind: &ObjectStoreScheme) -> bool {
    match kind {
        ObjectStoreScheme::AmazonS3 => {
            authority.starts_with("s3.") || authority.contains("r2.cloudflarestorage.com")
        }
        ObjectStoreScheme::MicrosoftAzure => true,
        _ => false,
    }
}

/// An object: its store, key, and (once listed or read) size and version.
#[derive(Clone)]
pub struct Object {
    /// The store holding it.
    pub store: Arc<Store>,
    /// Its key.
    pub key: String,
    /// Its size in bytes, when listed.
    pub size: Option<u64>,
    /// What the store reports of its content, when listed: see [`version_of`].
    pub version: Option<String>,
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Object({}", self.url())?;
        if let Some(v) = &self.version {
            write!(f, ", {v}")?;
        }
        write!(f, ")")
    }
}

impl PartialEq for Object {
    fn eq(&self, other: &Self) -> bool {
        self.store.base == other.store.base
            && self.key == other.key
            && self.size == other.size
            && self.version == other.version
    }
}
impl Eq for Object {}

impl Object {
    /// Its URL.
    pub fn url(&self) -> String {
        self.store.url_of(&self.key)
    }

    /// Its key as a store path.
    pub(crate) fn path(&self) -> Key {
        Key::from(self.key.as_str())
    }

    /// This object as listed with `meta`.
    pub(crate) fn with_meta(mut self, meta: &ObjectMeta) -> Object {
        self.size = Some(meta.size);
        self.version = version_of(meta);
        self
    }
}

/// The version of an object as a store reports it: its size and ETag (or,
/// without an ETag, its modification time), `<size>:<etag>`. The same in a
/// listing, a HEAD and a GET, so an unchanged object is known without its
/// bytes; `None` when the store reports neither.
pub fn version_of(meta: &ObjectMeta) -> Option<String> {
    match &meta.e_tag {
        Some(tag) => Some(format!("{}:{tag}", meta.size)),
        None if meta.last_modified.timestamp() > 0 => Some(format!(
            "{}:t{}",
            meta.size,
            meta.last_modified.timestamp_micros()
        )),
        None => None,
    }
}

/// The ETag in a version made by [`version_of`] (for a conditional GET).
pub(crate) fn etag_of(version: &str) -> Option<&str> {
    let (_, tag) = version.split_once(':')?;
    (!tag.starts_with('t') || tag.starts_with('"')).then_some(tag)
}

// ------------------------------------------------------------- the stores

/// Stores already opened, by base URL and endpoint: one client (and
/// connection pool) per bucket.
type Stores = Mutex<HashMap<(String, Option<String>), Arc<Store>>>;

/// Stores already opened, by base URL and endpoint.
fn registry() -> &'static Stores {
    static STORES: OnceLock<Stores> = OnceLock::new();
    STORES.get_or_init(Default::default)
}

/// How requests are retried: 5xx, 429, timeouts and dropped connections, with
/// exponential backoff and jitter (object_store's RetryConfig).
fn retry() -> RetryConfig {
    RetryConfig {
        max_retries: 10,
        retry_timeout: Duration::from_secs(180),
        ..RetryConfig::default()
    }
}

fn client_options(allow_http: bool) -> ClientOptions {
    ClientOptions::new()
        .with_allow_http(allow_http)
        .with_connect_timeout(Duration::from_secs(10))
        // A request reads at most a window (tar listing) or one object, member
        // or row group; a stalled body is retried from where it stopped.
        .with_timeout(Duration::from_secs(120))
        .with_pool_max_idle_per_host(MAX_IO_CONCURRENCY)
}

fn store_for(
    scheme: &str,
    base: &str,
    kind: &ObjectStoreScheme,
    access: &Access,
) -> Result<Arc<Store>, object_store::Error> {
    let key = (base.to_string(), access.endpoint.clone());
    let mut stores = registry().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = stores.get(&key) {
        return Ok(s.clone());
    }
    let mut endpoint = access.endpoint.clone();
    let inner: Arc<dyn ObjectStore> = match kind {
        ObjectStoreScheme::AmazonS3 => {
            let mut b = object_store::aws::AmazonS3Builder::from_env().with_url(base);
            let profile = profile::aws();
            if let Some(p) = &profile {
                if let Some(k) = &p.access_key_id {
                    b = b.with_access_key_id(k);
                }
                if let Some(s) = &p.secret_access_key {
                    b = b.with_secret_access_key(s);
                }
                if let Some(t) = &p.session_token {
                    b = b.with_token(t);
                }
                if std::env::var_os("AWS_REGION").is_none()
                    && std::env::var_os("AWS_DEFAULT_REGION").is_none()
                    && let Some(r) = &p.region
                {
                    b = b.with_region(r);
                }
            }
            if endpoint.is_none() {
                endpoint = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
                    .iter()
                    .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
                    .or_else(|| profile.and_then(|p| p.endpoint_url));
            }
            if let Some(e) = &endpoint {
                // S3-compatible stores take path-style requests.
                b = b
                    .with_endpoint(e)
                    .with_virtual_hosted_style_request(false)
                    .with_allow_http(e.starts_with("http://"));
            }
            let http = endpoint
                .as_deref()
                .is_some_and(|e| e.starts_with("http://"));
            Arc::new(
                b.with_retry(retry())
                    .with_client_options(client_options(http))
                    .build()?,
            )
        }
        ObjectStoreScheme::GoogleCloudStorage => Arc::new(
            object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(base)
                .with_retry(retry())
                .with_client_options(client_options(false))
                .build()?,
        ),
        ObjectStoreScheme::MicrosoftAzure => {
            let mut b = object_store::azure::MicrosoftAzureBuilder::from_env().with_url(base);
            let http = endpoint
                .as_deref()
                .is_some_and(|e| e.starts_with("http://"));
            if let Some(e) = &endpoint {
                b = b.with_endpoint(e.clone()).with_allow_http(http);
            }
            Arc::new(
                b.with_retry(retry())
                    .with_client_options(client_options(http))
                    .build()?,
            )
        }
        _ => {
            // A plain web server: one file per URL, no listing.
            endpoint = None;
            Arc::new(
                object_store::http::HttpBuilder::new()
                    .with_url(base)
                    .with_retry(retry())
                    .with_client_options(client_options(scheme == "http"))
                    .build()?,
            )
        }
    };
    let store = Arc::new(Store {
        base: base.to_string(),
        inner,
        endpoint: endpoint.map(|e| shown_url(&e)),
    });
    stores.insert(key, store.clone());
    Ok(store)
}

/// Makes `s3://<bucket>` (without an endpoint) reach `store`: in-process
/// tests run the object-store paths on object_store's in-memory store.
#[cfg(test)]
pub(crate) fn install_for_tests(bucket: &str, store: Arc<dyn ObjectStore>) {
    let base = format!("s3://{bucket}");
    let entry = Arc::new(Store {
        base: base.clone(),
        inner: store,
        endpoint: None,
    });
    registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert((base, None), entry);
}

// ------------------------------------------------------------ the runtime

/// The runtime object-store requests run on: two worker threads (requests
/// wait on the network; decoding runs on the extract pool).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("headstart-io")
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("cannot start the I/O runtime: {e}"))
    })
}

/// Runs `future` to completion on the I/O runtime, from a thread of the caller
/// (never from inside the runtime).
pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

// ---------------------------------------------------------------- errors

/// A store error as one line for people: what kind of failure, the store's
/// error code and message when it sent one, how many retries were made; never
/// the request itself (URLs with their queries, headers, signatures, string
/// to sign), and any credential value from the environment or a profile blanked.
pub fn explain(e: &object_store::Error) -> String {
    use object_store::Error as E;
    let mut chain = vec![e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        chain.push(s.to_string());
        source = s.source();
    }
    let all = chain.join(" | ");
    let code = xml_field(&all, "Code");
    let message = xml_field(&all, "Message");
    let store_said = match (&code, &message) {
        (Some(c), Some(m)) => format!(" ({c}: {m})"),
        (Some(c), None) => format!(" ({c})"),
        (None, Some(m)) => format!(" ({m})"),
        (None, None) => String::new(),
    };
    let retries = all
        .split(", after ")
        .nth(1)
        .and_then(|r| r.split(" retries").next())
        .filter(|n| n.parse::<u32>().is_ok())
        .map(|n| format!(" after {n} retries"))
        .unwrap_or_default();
    let refused = code
        .as_deref()
        .is_some_and(|c| CREDENTIAL_CODES.contains(&c));
    let text = match e {
        E::NotFound { .. } => format!("no such object or bucket{store_said}"),
        E::PermissionDenied { .. } => format!(
            "access denied{store_said}: {}",
            credential_hint(code.as_deref())
        ),
        E::Unauthenticated { .. } => format!(
            "not authenticated{store_said}: {}",
            credential_hint(code.as_deref())
        ),
        E::Precondition { .. } => {
            "the object changed while it was being read (its ETag differs); run again".into()
        }
        E::NotModified { .. } => "not modified".into(),
        E::UnknownConfigurationKey { key, .. } => format!("unknown setting `{key}`"),
        _ if refused => format!(
            "the store refused the credentials{store_said}: {}",
            credential_hint(code.as_deref())
        ),
        _ if code.is_some() => format!("the store answered{store_said}{retries}"),
        _ => {
            // The innermost cause is the most specific (`connection refused`,
            // `HTTP status server error (500 ...)`, a builder's complaint).
            let inner = chain.last().map(String::as_str).unwrap_or_default();
            let inner = inner.split(" for url (").next().unwrap_or(inner);
            let inner = inner.split("<?xml").next().unwrap_or(inner);
            format!("{}{retries}", inner.trim().trim_end_matches([':', ',']))
        }
    };
    redact(&text)
}

/// Error codes of S3-compatible stores and Azure that mean the credentials
/// were refused (some stores answer them with 400, not 401 or 403).
const CREDENTIAL_CODES: &[&str] = &[
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "AuthorizationHeaderMalformed",
    "InvalidSecurity",
    "AccessDenied",
    "AuthenticationFailed",
    "AuthorizationFailure",
];

/// What to check when a store refuses the credentials.
fn credential_hint(code: Option<&str>) -> &'static str {
    match code {
        Some("SignatureDoesNotMatch") => {
            "the secret key does not match the key id: check AWS_SECRET_ACCESS_KEY (or the profile's aws_secret_access_key)"
        }
        Some("InvalidAccessKeyId") => {
            "the store does not know this key id: check AWS_ACCESS_KEY_ID, AWS_PROFILE and --endpoint"
        }
        Some("ExpiredToken") | Some("InvalidToken") => {
            "the session token expired or is invalid: renew the credentials"
        }
        _ => {
            "check the credentials (AWS_*, GOOGLE_*, AZURE_* variables, the profile, or the machine's role) and that they may read this bucket"
        }
    }
}

/// The text of the first `<name>...</name>` element of an XML error body.
fn xml_field(text: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&format!("</{name}>"))? + start;
    let v = text[start..end].trim();
    (!v.is_empty() && v.len() < 500).then(|| v.to_string())
}

/// `text` with URLs cut before their query and without user info, credential
/// values from the environment and profile files replaced by `[redacted]`, and
/// control characters escaped.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        // The URL starts at its scheme, just before `://`.
        let start = rest[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.'))
            .map_or(0, |i| i + 1);
        let end = rest[at..]
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | '<' | '>'))
            .map_or(rest.len(), |e| at + e);
        out.push_str(&rest[..start]);
        out.push_str(&shown_url(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    for secret in secrets() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "[redacted]");
        }
    }
    headstart_files::escape(&out).into_owned()
}

/// A URL without user info, query or fragment: safe to show and record.
pub fn shown_url(text: &str) -> String {
    let cut = text.find(['?', '#']).unwrap_or(text.len());
    let text = &text[..cut];
    match text.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            // `container@account` (abfss) is not user info.
            let keep = scheme.starts_with("abfs") && !authority.contains(':');
            format!("{scheme}://{}{path}", if keep { authority } else { host })
        }
        None => text.to_string(),
    }
}

/// Credential values that must never be shown: those of environment
/// variables named like secrets, and of the AWS profile in use.
fn secrets() -> Vec<String> {
    let mut out: Vec<String> = std::env::vars()
        .filter(|(k, v)| is_secret_name(k) && v.len() >= 8)
        .map(|(_, v)| v)
        .collect();
    if let Some(p) = profile::aws() {
        out.extend(
            [p.secret_access_key, p.session_token]
                .into_iter()
                .flatten()
                .filter(|v| v.len() >= 8),
        );
    }
    out
}

/// Whether an environment variable name is that of a credential.
fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    let cloud = [
        "AWS_",
        "AZURE_",
        "GOOGLE_",
        "GCS_",
        "GCP_",
        "OBJECT_STORE_",
        "MINIO_",
    ]
    .iter()
    .any(|p| n.starts_with(p));
    cloud
        && ["SECRET", "TOKEN", "PASSWORD", "SAS", "_KEY", "CREDENTIAL"]
            .iter()
            .any(|w| n.contains(w))
        && !n.ends_with("_KEY_ID")
}

mod profile {
    //! Static credentials, region and endpoint of an AWS profile
    //! (`~/.aws/credentials`, `~/.aws/config`), for when the environment holds
    //! no keys and no web identity or container credentials: then the chain is
    //! the AWS CLI's (environment, web identity, profile, container, instance
    //! metadata). SSO and `credential_process` profiles are not read.

    use std::path::PathBuf;

    /// What a profile gives.
    #[derive(Debug, Clone, Default)]
    pub(super) struct Profile {
        pub access_key_id: Option<String>,
        pub secret_access_key: Option<String>,
        pub session_token: Option<String>,
        pub region: Option<String>,
        pub endpoint_url: Option<String>,
    }

    /// The profile in use (`AWS_PROFILE`, else `default`), when the
    /// environment leaves credentials to it.
    pub(super) fn aws() -> Option<Profile> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let by_env = env("AWS_ACCESS_KEY_ID").is_some()
            || env("AWS_WEB_IDENTITY_TOKEN_FILE").is_some()
            || env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
            || env("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some();
        let name = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
        let home = || std::env::var_os("HOME").map(PathBuf::from);
        let file = |var: &str, rel: &str| {
            env(var)
                .map(PathBuf::from)
                .or_else(|| home().map(|h| h.join(rel)))
        };
        let read = |p: Option<PathBuf>| p.and_then(|p| std::fs::read_to_string(p).ok());
        let creds = read(file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials"));
        let config = read(file("AWS_CONFIG_FILE", ".aws/config"));
        let mut p = Profile::default();
        if let Some(text) = &config {
            let section = if name == "default" {
                "default".to_string()
            } else {
                format!("profile {name}")
            };
            apply(&mut p, text, &section);
        }
        if let Some(text) = &creds {
            apply(&mut p, text, &name);
        }
        if by_env {
            // Keys come from the environment; region and endpoint may still
            // come from the profile.
            p.access_key_id = None;
            p.secret_access_key = None;
            p.session_token = None;
        }
        let any = p.access_key_id.is_some() || p.region.is_some() || p.endpoint_url.is_some();
        any.then_some(p)
    }

    /// Sets the fields found in `[section]` of an INI text.
    fn apply(p: &mut Profile, text: &str, section: &str) {
        let mut inside = false;
        for line in text.lines() {
            let line = line.trim();
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                inside = name.trim() == section;
                continue;
            }
            if !inside || line.starts_with(['#', ';']) {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let v = Some(v.trim().to_string()).filter(|v| !v.is_empty());
            match k.trim() {
                "aws_access_key_id" => p.access_key_id = v,
                "aws_secret_access_key" => p.secret_access_key = v,
                "aws_session_token" => p.session_token = v,
                "region" => p.region = v,
                "endpoint_url" => p.endpoint_url = v,
                _ => {}
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn profile_sections_are_read_by_name() {
            let text = "[default]\naws_access_key_id = A\n[other]\naws_access_key_id=B\naws_secret_access_key = S\n# comment\nregion=eu-west-1\n";
            let mut p = Profile::default();
            apply(&mut p, text, "other");
            assert_eq!(p.access_key_id.as_deref(), Some("B"));
            assert_eq!(p.secret_access_key.as_deref(), Some("S"));
            assert_eq!(p.region.as_deref(), Some("eu-west-1"));
            let mut p = Profile::default();
            apply(&mut p, text, "default");
            assert_eq!(p.access_key_id.as_deref(), Some("A"));
            assert_eq!(p.secret_access_key, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_paths() {
        assert!(is_url("s3://bucket/prefix/"));
        assert!(is_url("GS://b/x.tar"));
        assert!(is_url("https://example.com/x.tar"));
        assert!(!is_url("photos/"));
        assert!(!is_url("/data/s3:/x"));
        assert!(!is_url("ftp://host/x"));
    }

    #[test]
    fn shown_urls_lose_queries_and_user_info() {
        assert_eq!(
            shown_url("https://user:pw@host.example/a.tar?X-Amz-Signature=abc"),
            "https://host.example/a.tar"
        );
        assert_eq!(
            shown_url("abfss://data@account.dfs.core.windows.net/x"),
            "abfss://data@account.dfs.core.windows.net/x"
        );
        assert_eq!(shown_url("s3://b/k#frag"), "s3://b/k");
    }

    /// Regression guard for the no-secret rule: request URLs keep no query,
    /// XML error bodies give only their code and message, and credential
    /// values of the environment are blanked wherever they appear.
    #[test]
    fn redaction_removes_queries_signatures_and_secret_values() {
        let text = "Error performing GET http://127.0.0.1:9/bkt/a.jpg?X-Amz-Credential=AKIA&X-Amz-Signature=deadbeef in 2ms - error sending request for url (https://u:p@h/x?sig=1)";
        let r = redact(text);
        assert!(
            !r.contains("deadbeef") && !r.contains("sig=1") && !r.contains("u:p"),
            "{r}"
        );
        assert!(r.contains("http://127.0.0.1:9/bkt/a.jpg"), "{r}");
        assert!(is_secret_name("AWS_SECRET_ACCESS_KEY"));
        assert!(is_secret_name("AZURE_STORAGE_ACCOUNT_KEY"));
        assert!(is_secret_name("AWS_SESSION_TOKEN"));
        assert!(!is_secret_name("AWS_ACCESS_KEY_ID"));
        assert!(!is_secret_name("AWS_REGION"));
        assert!(!is_secret_name("PATH"));
        let body = "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message><StringToSign>AWS4-HMAC-SHA256 x</StringToSign><SignatureProvided>abc123</SignatureProvided></Error>";
        assert_eq!(
            xml_field(body, "Code").as_deref(),
            Some("SignatureDoesNotMatch")
        );
        assert_eq!(xml_field(body, "Nope"), None);
    }

    /// Regression: moto answers a wrong secret with 400 SignatureDoesNotMatch
    /// (not 403), which read as "the store answered", without the fix.
    #[test]
    fn refused_credentials_are_named_whatever_the_status() {
        let body = "Error performing GET http://127.0.0.1:9/bkt?list-type=2 in 3ms - Server returned non-2xx status code: 400 Bad Request: <?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message><StringToSign>AWS4-HMAC-SHA256\n20260101</StringToSign><SignatureProvided>0123abcd</SignatureProvided></Error>";
        let e = object_store::Error::Generic {
            store: "S3",
            source: body.into(),
        };
        let text = explain(&e);
        assert!(
            text.starts_with("the store refused the credentials (SignatureDoesNotMatch: ")
                && text.contains("AWS_SECRET_ACCESS_KEY"),
            "{text}"
        );
        assert!(
            !text.contains("0123abcd") && !text.contains("AWS4-HMAC"),
            "{text}"
        );
        let e = object_store::Error::Generic {
            store: "S3",
            source: "Error performing GET http://h/b/k?x=1 in 2ms, after 10 retries, max_retries: 10, retry_timeout: 180s  - HTTP error: error sending request for url (http://h/b/k?x=1): connection refused".into(),
        };
        let text = explain(&e);
        assert!(text.ends_with("after 10 retries"), "{text}");
        assert!(!text.contains("x=1"), "{text}");
    }

    #[test]
    fn urls_with_credentials_are_refused_without_echoing_them() {
        let access = Access::default();
        let e = RemoteUrl::parse("https://host.example/a.tar?sig=SECRETVALUE", &access)
            .unwrap_err()
            .to_string();
        assert!(e.contains("query") && !e.contains("SECRETVALUE"), "{e}");
        let e = RemoteUrl::parse("https://me:SECRETVALUE@host.example/a.tar", &access)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("credentials") && !e.contains("SECRETVALUE"),
            "{e}"
        );
        let e = RemoteUrl::parse("s3:///x", &access)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no bucket"), "{e}");
    }

    #[test]
    fn keys_and_stores_come_from_the_url() {
        let access = Access {
            endpoint: Some("http://127.0.0.1:1".into()),
            ..Access::default()
        };
        let u = RemoteUrl::parse("s3://bkt/shards/{00000..00002}.tar", &access).unwrap();
        assert_eq!(u.key, "shards/{00000..00002}.tar");
        assert_eq!(u.shown(), "s3://bkt/shards/{00000..00002}.tar");
        assert_eq!(u.endpoint(), Some("http://127.0.0.1:1"));
        let v = RemoteUrl::parse("s3://bkt/photos/", &access).unwrap();
        assert_eq!((v.key.as_str(), v.parent_key()), ("photos", ""));
        assert!(Arc::ptr_eq(&u.store, &v.store), "one client per bucket");
        let h = RemoteUrl::parse("https://host.example/data/x.tar", &access).unwrap();
        assert_eq!((h.key.as_str(), h.file_name()), ("data/x.tar", "x.tar"));
        assert_eq!(format!("{:?}", h.store), "Store(https://host.example)");
    }

    #[test]
    fn versions_are_size_and_etag() {
        let meta = ObjectMeta {
            location: Key::from("a.jpg"),
            last_modified: chrono::DateTime::from_timestamp(0, 0).unwrap(),
            size: 12,
            e_tag: Some("\"abc\"".into()),
            version: None,
        };
        let v = version_of(&meta).unwrap();
        assert_eq!(v, "12:\"abc\"");
        assert_eq!(etag_of(&v), Some("\"abc\""));
        let no_tag = ObjectMeta {
            e_tag: None,
            ..meta
        };
        assert_eq!(version_of(&no_tag), None);
    }

    #[test]
    fn io_concurrency_is_checked() {
        let a = Access {
            io_concurrency: 0,
            ..Access::default()
        };
        assert!(a.check().is_err());
        let a = Access {
            endpoint: Some("127.0.0.1:9000".into()),
            ..Access::default()
        };
        assert!(a.check().unwrap_err().to_string().contains("endpoint"));
        assert!((16..=64).contains(&default_io_concurrency()));
    }
}

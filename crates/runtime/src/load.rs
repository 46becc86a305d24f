//! Finding, provisioning and loading the ONNX Runtime shared library.
//!
//! Order: an explicit path (`--ort-lib` / `ORT_DYLIB_PATH`), else the copy in the
//! headstart cache, else the pinned `onnxruntime` wheel fetched through pip and
//! installed atomically into the cache. For a GPU device, the GPU build installed by
//! `headstart runtime install --gpu` ([`gpu`]) is used when it is in the cache.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use headstart_provision::{Home, Provisioned, Wheel, ensure_file, fetch_wheel, read_member};
use ort::ep::ExecutionProvider;

use crate::RuntimeError;
use crate::gpu;

/// The ONNX Runtime version headstart provisions.
pub const ORT_VERSION: &str = "1.32.0";

const LIB_MEMBER: &str = "onnxruntime/capi/libonnxruntime.so.1.32.0";
const HINT: &str = "Use an existing libonnxruntime.so of version 1.31 or newer instead, e.g. from `pip install onnxruntime` (site-packages/onnxruntime/capi/).";

/// The pinned CPU wheel for this platform.
pub fn cpu_wheel() -> Result<Wheel, RuntimeError> {
    if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        Ok(Wheel {
            package: "onnxruntime",
            version: ORT_VERSION,
            sha256: "5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d",
            python_version: Some("3.11"),
            platform: Some("manylinux_2_28_x86_64"),
            hint: HINT,
        })
    } else {
        Err(RuntimeError::UnsupportedPlatform {
            platform: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
        })
    }
}

/// Where the runtime library was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LibSource {
    /// Given by the caller.
    Explicit,
    /// Already in the headstart cache.
    Cache,
    /// Fetched and installed just now.
    Installed,
    /// The GPU build in the cache (installed by [`gpu::install_gpu`]).
    GpuCache,
}

/// A located runtime library.
#[derive(Debug, Clone)]
pub struct RuntimeLib {
    /// The shared library file.
    pub path: PathBuf,
    /// How it was found.
    pub source: LibSource,
}

/// Path of the CPU runtime inside the cache.
pub fn cached_path(home: &Home) -> PathBuf {
    home.root()
        .join("runtime")
        .join(format!("onnxruntime-{ORT_VERSION}"))
        .join(format!("libonnxruntime.so.{ORT_VERSION}"))
}

/// Installs the pinned CPU runtime into the cache (no-op when present).
pub fn install(home: &Home, log: &dyn Fn(&str)) -> Result<(PathBuf, Provisioned), RuntimeError> {
    let target = cached_path(home);
    let wheel = cpu_wheel()?;
    let done = ensure_file(&target, |w| -> Result<(), RuntimeError> {
        let whl = fetch_wheel(home, &wheel, log)?;
        let bytes = read_member(&whl, LIB_MEMBER)?;
        std::io::Write::write_all(w, &bytes).map_err(|source| {
            headstart_provision::ProvisionError::Io {
                path: target.clone(),
                source,
            }
        })?;
        log(&format!(
            "installed ONNX Runtime {ORT_VERSION} at {}",
            target.display()
        ));
        Ok(())
    })?;
    Ok((target, done))
}

/// Finds the runtime library, installing it into the cache if needed.
pub fn locate(
    home: &Home,
    explicit: Option<&Path>,
    log: &dyn Fn(&str),
) -> Result<RuntimeLib, RuntimeError> {
    if let Some(p) = explicit {
        return Ok(RuntimeLib {
            path: p.to_path_buf(),
            source: LibSource::Explicit,
        });
    }
    let (path, how) = install(home, log)?;
    Ok(RuntimeLib {
        path,
        source: match how {
            Provisioned::Cached => LibSource::Cache,
            Provisioned::Installed => LibSource::Installed,
        },
    })
}

/// Finds the runtime library for a session on a GPU (`gpu`) or the CPU.
///
/// An explicit path always wins. For a GPU, the GPU build in the cache is used when it
/// is installed ([`LibSource::GpuCache`]); when it is not, the CPU build is used (and
/// the GPU provider will then fail to register with [`DeviceFix::CpuBuild`](crate::DeviceFix)).
/// The returned [`RuntimeLib::source`] says which one was picked.
pub fn locate_for(
    home: &Home,
    explicit: Option<&Path>,
    gpu: bool,
    log: &dyn Fn(&str),
) -> Result<RuntimeLib, RuntimeError> {
    if explicit.is_none()
        && gpu
        && let Some((path, _)) = gpu::installed(home)
    {
        return Ok(RuntimeLib {
            path,
            source: LibSource::GpuCache,
        });
    }
    locate(home, explicit, log)
}

/// The loaded runtime.
#[derive(Debug)]
pub struct Runtime {
    /// The library that was loaded.
    pub path: PathBuf,
    /// Its version, e.g. `1.32.0`.
    pub version: String,
    /// For a GPU build installed by headstart: the NVIDIA libraries opened before it.
    pub preload: Option<gpu::Preload>,
    pub(crate) env: ort::environment::Environment,
}

impl Runtime {
    /// The ONNX Runtime environment, for sessions other than a
    /// [`Backbone`](crate::Backbone) (e.g. running an exported classifier).
    pub fn env(&self) -> &ort::environment::Environment {
        &self.env
    }
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// Loads the library at `path` once per process and creates the ORT environment.
///
/// A relative `path` is taken from the current directory (a bare file name would
/// otherwise send the dynamic loader searching its library path). A second call
/// with another library is an error; with the same one it returns the runtime
/// already loaded.
pub fn init(path: &Path) -> Result<&'static Runtime, RuntimeError> {
    let load_err = |message: String| RuntimeError::RuntimeLoad {
        path: path.to_path_buf(),
        message,
    };
    if !path.exists() {
        return Err(load_err("no such file".into()));
    }
    // Absolute, not canonical: a symlink keeps its folder (and a GPU build's manifest).
    let path = &std::path::absolute(path).map_err(|e| load_err(e.to_string()))?;
    if let Some(rt) = RUNTIME.get() {
        if rt.path == *path {
            return Ok(rt);
        }
        return Err(load_err(format!(
            "ONNX Runtime is already loaded from {}",
            rt.path.display()
        )));
    }
    // A GPU build installed by headstart: open its NVIDIA libraries first, so that the
    // CUDA / TensorRT providers find them without LD_LIBRARY_PATH.
    let preload = gpu::manifest_of(path).map(|m| {
        let dir = path.parent().unwrap_or(Path::new("."));
        gpu::preload(dir, &m.preload)
    });
    let builder = ort::init_from(path).map_err(|e| load_err(load_reason(&e)))?;
    let env = builder
        .with_name("headstart")
        .with_telemetry(false)
        .build()
        .map_err(|e| load_err(e.to_string()))?;
    let version = library_version(path)
        .or_else(|| parse_version(ort::info()))
        .unwrap_or_else(|| "unknown".into());
    Ok(RUNTIME.get_or_init(|| Runtime {
        path: path.to_path_buf(),
        version,
        preload,
        env,
    }))
}

/// The words of a load error with the loader's reason: ort's message for a library
/// the dynamic loader refuses ends in "dlopen failed"; the reason (`PATH: invalid ELF
/// header`, a missing dependency) is the source of the libloading error inside.
fn load_reason(e: &ort::LoadDynamicError) -> String {
    let mut text = e.to_string();
    if let ort::LoadDynamicError::Dlopen { error, .. } = e {
        let mut source = std::error::Error::source(error);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
    }
    text
}

/// The version string the library reports (`OrtGetApiBase()->GetVersionString()`).
fn library_version(path: &Path) -> Option<String> {
    // SAFETY: the library was already loaded and validated by `ort::init_from`
    // (dlopen is reference-counted, so this returns the same handle), and
    // `OrtGetApiBase` has this signature in every ONNX Runtime release; the
    // returned string is static, NUL-terminated and owned by the library.
    unsafe {
        let lib = libloading::Library::new(path).ok()?;
        let get: libloading::Symbol<unsafe extern "C" fn() -> *const ort::sys::OrtApiBase> =
            lib.get(b"OrtGetApiBase").ok()?;
        let base = get();
        if base.is_null() {
            return None;
        }
        let s = ((*base).GetVersionString)();
        if s.is_null() {
            return None;
        }
        let v = std::ffi::CStr::from_ptr(s).to_str().ok()?.to_string();
        std::mem::forget(lib); // keep the reference ort relies on
        Some(v)
    }
}

fn parse_version(info: &str) -> Option<String> {
    let start = info.find("git-branch=rel-")? + "git-branch=rel-".len();
    let rest = &info[start..];
    let end = rest.find([',', ' ']).unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

/// Execution providers compiled into the loaded library, among those headstart uses.
pub fn providers() -> Vec<(&'static str, bool)> {
    vec![
        (
            "CPUExecutionProvider",
            ort::ep::CPU::is_available().unwrap_or(false),
        ),
        (
            "CUDAExecutionProvider",
            ort::ep::CUDA::is_available().unwrap_or(false),
        ),
        (
            "TensorrtExecutionProvider",
            ort::ep::TensorRT::is_available().unwrap_or(false),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_read_from_build_info() {
        assert_eq!(
            parse_version("ORT Build Info: git-branch=rel-1.32.0, git-commit-id=abc").as_deref(),
            Some("1.32.0")
        );
        assert_eq!(parse_version("nothing"), None);
    }
}

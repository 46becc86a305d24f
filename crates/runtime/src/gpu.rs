//! The GPU build of ONNX Runtime and the NVIDIA libraries it needs, from PyPI wheels.
//!
//! `headstart runtime install --gpu` fetches the pinned `onnxruntime-gpu` wheel and the
//! CUDA 13 / cuDNN 9 wheels (and, with `--tensorrt`, TensorRT 10) through pip and puts
//! every shared library into one folder, `$HEADSTART_HOME/runtime/onnxruntime-gpu-<ver>/`:
//! ONNX Runtime finds its provider libraries next to `libonnxruntime.so`, and
//! [`preload`] opens the NVIDIA libraries with `RTLD_GLOBAL` (in dependency order)
//! before ONNX Runtime is loaded, so that the CUDA provider's `libcublasLt.so.13`,
//! `libcudnn.so.9`, ... resolve to them without `LD_LIBRARY_PATH`. The driver
//! (`libcuda.so.1`) comes from the system.
//!
//! Installation is crash safe and concurrent-safe: it runs under a lock file, each
//! library is written to a temporary file and renamed into place, and the folder counts
//! as installed only once its manifest ([`MANIFEST`]) is written, last.

use std::path::{Path, PathBuf};

use headstart_provision::{Home, Lock, Provisioned, Wheel, extract_members, write_atomic};
use serde::{Deserialize, Serialize};

use crate::RuntimeError;

/// The `onnxruntime-gpu` version headstart provisions (CUDA 13, cuDNN 9, TensorRT 10).
pub const ORT_GPU_VERSION: &str = "1.31.1";

/// The manifest that marks a complete GPU runtime folder.
pub const MANIFEST: &str = "headstart-gpu.json";

const ORT_LIB: &str = "libonnxruntime.so.1.31.1";

const GPU_HINT: &str = "The GPU runtime comes from PyPI wheels (onnxruntime-gpu and NVIDIA's CUDA/cuDNN wheels); point pip at a mirror that has them (pip.conf / PIP_INDEX_URL) or at a folder of the wheels with HEADSTART_WHEELHOUSE=DIR, or install onnxruntime-gpu yourself, put its CUDA 13 and cuDNN 9 libraries on LD_LIBRARY_PATH and load its libonnxruntime.so by path.";
const TRT_HINT: &str = "NVIDIA serves the TensorRT wheels from https://pypi.nvidia.com (PyPI only holds a placeholder that downloads at install time): set PIP_EXTRA_INDEX_URL=https://pypi.nvidia.com, or put tensorrt_cu13_libs-10.16.1.11-*.whl into HEADSTART_WHEELHOUSE=DIR.";

/// Which members of a wheel are installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Members {
    /// `onnxruntime/capi/libonnxruntime*.so*`: the runtime and its provider libraries
    /// (not the Python extension).
    OrtCapi,
    /// `nvidia/**/lib/lib*.so*`: CUDA, cuBLAS, cuDNN, ...
    NvidiaLib,
    /// `tensorrt_libs/lib*.so*`.
    TensorrtLibs,
}

/// One wheel of the GPU runtime.
#[derive(Debug, Clone, Copy)]
pub struct GpuWheel {
    /// The pinned wheel.
    pub wheel: Wheel,
    /// What is taken out of it.
    pub members: Members,
    /// Installed only with `--tensorrt`.
    pub tensorrt: bool,
}

const fn nvidia(
    package: &'static str,
    version: &'static str,
    sha256: &'static str,
    platform: &'static str,
) -> GpuWheel {
    GpuWheel {
        wheel: Wheel {
            package,
            version,
            sha256,
            python_version: None,
            platform: Some(platform),
            hint: GPU_HINT,
        },
        members: Members::NvidiaLib,
        tensorrt: false,
    }
}

/// The pinned wheels, runtime first. The NVIDIA wheels are the CUDA 13.0 release
/// family (they run on any CUDA 13 driver, r580 or newer); each is pinned by version
/// and sha256, with the platform tag it is published under (pip matches those exactly).
/// TensorRT is pinned by version only: its wheels live on NVIDIA's own index.
const WHEELS: [GpuWheel; 9] = [
    GpuWheel {
        wheel: Wheel {
            package: "onnxruntime-gpu",
            version: ORT_GPU_VERSION,
            sha256: "e26c475fe361b2015f45b4b824bd13f0bb20204e59b62814e6f0acd5f3d491a6",
            python_version: Some("3.11"),
            platform: Some("manylinux_2_28_x86_64"),
            hint: GPU_HINT,
        },
        members: Members::OrtCapi,
        tensorrt: false,
    },
    nvidia(
        "nvidia-cuda-runtime",
        "13.0.96",
        "7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548",
        "manylinux_2_17_x86_64",
    ),
    nvidia(
        "nvidia-cuda-nvrtc",
        "13.0.88",
        "ad9b6d2ead2435f11cbb6868809d2adeeee302e9bb94bcf0539c7a40d80e8575",
        "manylinux_2_12_x86_64",
    ),
    nvidia(
        "nvidia-nvjitlink",
        "13.0.88",
        "13a74f429e23b921c1109976abefacc69835f2f433ebd323d3946e11d804e47b",
        "manylinux_2_12_x86_64",
    ),
    nvidia(
        "nvidia-cublas",
        "13.1.0.3",
        "ee8722c1f0145ab246bccb9e452153b5e0515fd094c3678df50b2a0888b8b171",
        "manylinux_2_27_x86_64",
    ),
    nvidia(
        "nvidia-curand",
        "10.4.0.35",
        "1aee33a5da6e1db083fe2b90082def8915f30f3248d5896bcec36a579d941bfc",
        "manylinux_2_27_x86_64",
    ),
    nvidia(
        "nvidia-cufft",
        "12.0.0.61",
        "6c44f692dce8fd5ffd3e3df134b6cdb9c2f72d99cf40b62c32dde45eea9ddad3",
        "manylinux_2_17_x86_64",
    ),
    nvidia(
        "nvidia-cudnn-cu13",
        "9.17.1.4",
        "6919fbd8c7bc8bdef276ab5c649c85206636aac1dceb77e650895c0fb6fb4f01",
        "manylinux_2_27_x86_64",
    ),
    GpuWheel {
        wheel: Wheel {
            package: "tensorrt-cu13-libs",
            version: "10.16.1.11",
            sha256: "",
            python_version: None,
            platform: None,
            hint: TRT_HINT,
        },
        members: Members::TensorrtLibs,
        tensorrt: true,
    },
];

/// The pinned wheels for this platform; TensorRT's only when `tensorrt`.
pub fn gpu_wheels(tensorrt: bool) -> Result<Vec<GpuWheel>, RuntimeError> {
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        return Err(RuntimeError::UnsupportedPlatform {
            platform: format!(
                "{}-{} (GPU build)",
                std::env::consts::OS,
                std::env::consts::ARCH
            ),
        });
    }
    Ok(WHEELS
        .iter()
        .filter(|w| tensorrt || !w.tensorrt)
        .copied()
        .collect())
}

/// The GPU runtime folder in the cache.
pub fn gpu_dir(home: &Home) -> PathBuf {
    home.root()
        .join("runtime")
        .join(format!("onnxruntime-gpu-{ORT_GPU_VERSION}"))
}

/// The GPU build's `libonnxruntime.so` in the cache.
pub fn gpu_lib_path(home: &Home) -> PathBuf {
    gpu_dir(home).join(ORT_LIB)
}

/// Whether `name` looks like a shared library: `lib*.so` or `lib*.so.<version>`.
fn is_shared_lib(name: &str) -> bool {
    name.starts_with("lib")
        && name.find(".so").is_some_and(|i| {
            let rest = &name[i + 3..];
            rest.is_empty()
                || (rest.starts_with('.')
                    && rest[1..].chars().all(|c| c.is_ascii_digit() || c == '.'))
        })
}

/// The file name under which a wheel member is installed, or `None` when it is not.
pub fn member_target(members: Members, member: &str) -> Option<String> {
    let (dir, name) = member.rsplit_once('/')?;
    if !is_shared_lib(name) {
        return None;
    }
    let wanted = match members {
        Members::OrtCapi => dir == "onnxruntime/capi" && name.starts_with("libonnxruntime"),
        // Not the drop-in BLAS/FFTW front ends (loaded globally they would take over
        // those symbols) nor NVRTC's alternative build.
        Members::NvidiaLib => {
            dir.starts_with("nvidia/")
                && dir.ends_with("/lib")
                && !name.starts_with("libnvblas")
                && !name.starts_with("libcufftw")
                && !name.contains(".alt.")
        }
        Members::TensorrtLibs => dir == "tensorrt_libs",
    };
    wanted.then(|| name.to_string())
}

/// Libraries of the folder that [`preload`] opens: all but ONNX Runtime's own, which
/// ONNX Runtime opens itself.
fn is_preloaded(name: &str) -> bool {
    is_shared_lib(name) && !name.starts_with("libonnxruntime")
}

/// Rough dependency rank of an NVIDIA library: lower ranks are opened first. The order
/// only saves retries; [`preload`] retries whatever failed until nothing more loads.
fn preload_rank(name: &str) -> u8 {
    let stem = name.split(".so").next().unwrap_or(name);
    match stem {
        "libcudart" | "libnvJitLink" | "libnvrtc-builtins" => 0,
        "libnvrtc" | "libcublasLt" => 1,
        "libcublas" | "libcurand" | "libcufft" => 2,
        "libcufftw" | "libcudnn_graph" => 3,
        s if s.starts_with("libcudnn_engines") || s == "libcudnn_heuristic" => 4,
        "libcudnn_ops" => 5,
        "libcudnn_cnn" | "libcudnn_adv" => 6,
        "libcudnn" => 7,
        "libnvinfer" => 8,
        s if s.starts_with("libnvinfer") || s.starts_with("libnvonnxparser") => 9,
        _ => 10,
    }
}

/// The libraries among `names` to preload, in the order they are opened.
pub fn preload_order(names: &[String]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().filter(|n| is_preloaded(n)).cloned().collect();
    v.sort_by(|a, b| preload_rank(a).cmp(&preload_rank(b)).then(a.cmp(b)));
    v.dedup();
    v
}

/// `DT_SONAME` and the `DT_NEEDED` entries of a 64-bit little-endian ELF file, read
/// from its program headers and dynamic section (a few kilobytes, whatever the size of
/// the library). `None` when the file is not such an ELF file.
fn elf_dynamic(path: &Path) -> Option<(Option<String>, Vec<String>)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let mut read_at = |offset: u64, len: usize| -> Option<Vec<u8>> {
        let mut buf = vec![0u8; len];
        f.seek(SeekFrom::Start(offset)).ok()?;
        f.read_exact(&mut buf).ok()?;
        Some(buf)
    };
    let u16_at = |b: &[u8], o: usize| Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |b: &[u8], o: usize| Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |b: &[u8], o: usize| Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?));
    let eh = read_at(0, 64)?;
    // Magic, ELFCLASS64, ELFDATA2LSB.
    if eh[..4] != *b"\x7fELF" || eh[4] != 2 || eh[5] != 1 {
        return None;
    }
    let phoff = u64_at(&eh, 0x20)?;
    let phentsize = usize::from(u16_at(&eh, 0x36)?);
    let phnum = usize::from(u16_at(&eh, 0x38)?);
    if phentsize < 56 || phnum == 0 {
        return None;
    }
    let ph = read_at(phoff, phentsize * phnum)?;
    let (mut loads, mut dynamic) = (Vec::new(), None);
    for i in 0..phnum {
        let p = &ph[i * phentsize..];
        let (offset, vaddr, filesz) = (u64_at(p, 8)?, u64_at(p, 16)?, u64_at(p, 32)?);
        match u32_at(p, 0)? {
            1 => loads.push((vaddr, offset, filesz)), // PT_LOAD
            2 => dynamic = Some((offset, filesz)),    // PT_DYNAMIC
            _ => {}
        }
    }
    let (doff, dsize) = dynamic?;
    let dynamic = read_at(doff, usize::try_from(dsize).ok()?.min(1 << 20))?;
    let (mut needed, mut soname, mut strtab, mut strsz) = (Vec::new(), None, None, None);
    for e in dynamic.chunks_exact(16) {
        let (tag, val) = (u64_at(e, 0)?, u64_at(e, 8)?);
        match tag {
            0 => break,               // DT_NULL
            1 => needed.push(val),    // DT_NEEDED
            5 => strtab = Some(val),  // DT_STRTAB (an address)
            10 => strsz = Some(val),  // DT_STRSZ
            14 => soname = Some(val), // DT_SONAME
            _ => {}
        }
    }
    let addr = strtab?;
    let (vaddr, offset, _) = loads
        .iter()
        .find(|(v, _, size)| addr >= *v && addr - v < *size)?;
    let strings = read_at(
        offset + (addr - vaddr),
        usize::try_from(strsz?).ok()?.min(16 << 20),
    )?;
    let string = |at: u64| -> Option<String> {
        let rest = strings.get(usize::try_from(at).ok()?..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        String::from_utf8(rest[..end].to_vec()).ok()
    };
    Some((
        soname.and_then(string),
        needed.into_iter().filter_map(string).collect(),
    ))
}

/// A library of the folder: file name, soname, the libraries it needs.
type LibDeps = (String, Option<String>, Vec<String>);

/// Orders libraries so that each comes after the ones among them it needs; `libs` is in
/// the preferred order, which breaks ties and cycles.
fn order_by_needs(mut libs: Vec<LibDeps>) -> Vec<String> {
    let provides = |l: &LibDeps, n: &String| l.0 == *n || l.1.as_ref() == Some(n);
    let mut out = Vec::with_capacity(libs.len());
    while !libs.is_empty() {
        let ready = libs
            .iter()
            .position(|(_, _, needed)| {
                !needed
                    .iter()
                    .any(|n| libs.iter().any(|other| provides(other, n)))
            })
            .unwrap_or(0);
        out.push(libs.remove(ready).0);
    }
    out
}

/// The libraries among `names` (files in `dir`) to preload, in the order to open them:
/// each after the libraries of the folder it needs (read from its ELF dynamic section),
/// so that opening one never sends the loader looking for a dependency elsewhere (a
/// system CUDA of another version, say). Ties go by [`preload_order`].
pub fn dependency_order(dir: &Path, names: &[String]) -> Vec<String> {
    let libs = preload_order(names)
        .into_iter()
        .map(|n| {
            let (soname, needed) = elf_dynamic(&dir.join(&n)).unwrap_or_default();
            (n, soname, needed)
        })
        .collect();
    order_by_needs(libs)
}

/// What a complete GPU runtime folder holds (written last by the installer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuManifest {
    /// The ONNX Runtime version.
    pub onnxruntime: String,
    /// File name of the runtime library in the folder.
    pub library: String,
    /// `package==version` of every wheel installed.
    pub wheels: Vec<String>,
    /// Whether the TensorRT libraries are installed.
    pub tensorrt: bool,
    /// Every library file in the folder.
    pub files: Vec<String>,
    /// The libraries opened before ONNX Runtime, in this order.
    pub preload: Vec<String>,
}

/// The manifest of the folder holding `lib`, if `lib` is a GPU runtime that headstart
/// installed.
pub fn manifest_of(lib: &Path) -> Option<GpuManifest> {
    let text = std::fs::read_to_string(lib.parent()?.join(MANIFEST)).ok()?;
    serde_json::from_str(&text).ok()
}

/// The installed GPU runtime in the cache: its library and manifest.
pub fn installed(home: &Home) -> Option<(PathBuf, GpuManifest)> {
    let lib = gpu_lib_path(home);
    let m = manifest_of(&lib)?;
    lib.is_file().then_some((lib, m))
}

/// Installs the GPU runtime into the cache (no-op when it is there; adds the TensorRT
/// libraries to an installation without them when `tensorrt`). Fetched wheels are
/// deleted once the folder is complete (together about 2 GB, 3 GB with TensorRT).
pub fn install_gpu(
    home: &Home,
    tensorrt: bool,
    log: &dyn Fn(&str),
) -> Result<(PathBuf, Provisioned), RuntimeError> {
    let wheels = gpu_wheels(tensorrt)?;
    let fetch = |w: &Wheel| -> Result<PathBuf, RuntimeError> {
        Ok(headstart_provision::fetch_wheel(home, w, log)?)
    };
    install_with(&gpu_dir(home), &wheels, tensorrt, &fetch, log)
}

/// [`install_gpu`] into `dir` with `wheels`, fetching each with `fetch`.
fn install_with(
    dir: &Path,
    wheels: &[GpuWheel],
    tensorrt: bool,
    fetch: &dyn Fn(&Wheel) -> Result<PathBuf, RuntimeError>,
    log: &dyn Fn(&str),
) -> Result<(PathBuf, Provisioned), RuntimeError> {
    let lib = dir.join(ORT_LIB);
    let complete = |m: &GpuManifest| m.tensorrt || !tensorrt;
    if manifest_of(&lib).is_some_and(|m| complete(&m)) {
        return Ok((lib, Provisioned::Cached));
    }
    let mut lock_path = dir.as_os_str().to_owned();
    lock_path.push(".lock");
    let _lock = Lock::acquire(Path::new(&lock_path))?;
    // A complete installation without TensorRT keeps what it has and gains TensorRT.
    let before = manifest_of(&lib);
    if before.as_ref().is_some_and(complete) {
        return Ok((lib, Provisioned::Cached));
    }
    let (mut files, mut installed) = before.map(|m| (m.files, m.wheels)).unwrap_or_default();
    let mut fetched: Vec<PathBuf> = Vec::new();
    let todo: Vec<&GpuWheel> = wheels
        .iter()
        .filter(|w| (tensorrt || !w.tensorrt) && !installed.contains(&w.wheel.requirement()))
        .collect();
    for gw in todo {
        let whl = fetch(&gw.wheel)?;
        let names = extract_members(&whl, dir, &|m| member_target(gw.members, m))?;
        if names.is_empty() {
            return Err(headstart_provision::ProvisionError::Member {
                path: whl,
                member: match gw.members {
                    Members::OrtCapi => "onnxruntime/capi/libonnxruntime*.so*",
                    Members::NvidiaLib => "nvidia/*/lib/lib*.so*",
                    Members::TensorrtLibs => "tensorrt_libs/lib*.so*",
                }
                .into(),
                message: "the wheel holds no such shared library".into(),
            }
            .into());
        }
        log(&format!(
            "{}: {} {} into {}",
            gw.wheel.requirement(),
            names.len(),
            if names.len() == 1 {
                "library"
            } else {
                "libraries"
            },
            dir.display()
        ));
        for n in names {
            if !files.contains(&n) {
                files.push(n);
            }
        }
        installed.push(gw.wheel.requirement());
        fetched.push(whl);
    }
    if !lib.is_file() {
        return Err(RuntimeError::RuntimeLoad {
            path: lib,
            message: format!("the onnxruntime-gpu wheel did not provide {ORT_LIB}"),
        });
    }
    let manifest = GpuManifest {
        onnxruntime: ORT_GPU_VERSION.into(),
        library: ORT_LIB.into(),
        wheels: installed,
        tensorrt,
        preload: dependency_order(dir, &files),
        files,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| RuntimeError::Ort {
        context: "writing the GPU runtime manifest".into(),
        message: e.to_string(),
    })?;
    write_atomic(&dir.join(MANIFEST), &json)?;
    for w in fetched {
        let _ = std::fs::remove_file(w);
    }
    log(&format!(
        "installed ONNX Runtime {ORT_GPU_VERSION} (GPU build{}) at {}",
        if tensorrt { ", with TensorRT" } else { "" },
        dir.display()
    ));
    Ok((lib, Provisioned::Installed))
}

/// Outcome of [`preload`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preload {
    /// Libraries opened, in the order they were.
    pub loaded: Vec<String>,
    /// Libraries that could not be opened, each with the loader's reason.
    pub failed: Vec<String>,
}

/// Opens `names` (files in `dir`, in [`dependency_order`]) with `RTLD_NOW | RTLD_GLOBAL` and keeps them open for
/// the life of the process, so that libraries which ONNX Runtime or cuDNN open later by
/// name (`libcublasLt.so.13`, `libcudnn_graph.so.9`, ...) resolve to these copies. A
/// library that fails is retried after the others, until a round opens nothing new; what
/// still fails is reported, not fatal (the provider that needs it then fails to register
/// with a message naming it).
pub fn preload(dir: &Path, names: &[String]) -> Preload {
    use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};
    let mut out = Preload::default();
    let mut pending: Vec<(String, String)> = dependency_order(dir, names)
        .into_iter()
        .map(|n| (n, String::new()))
        .collect();
    loop {
        let before = pending.len();
        let mut still = Vec::new();
        for (name, _) in pending {
            // SAFETY: these are the NVIDIA libraries installed with this runtime; their
            // initialisers only set up their own state. The handle is leaked on purpose:
            // the libraries must stay loaded for as long as ONNX Runtime may use them.
            match unsafe { Library::open(Some(dir.join(&name)), RTLD_NOW | RTLD_GLOBAL) } {
                Ok(lib) => {
                    std::mem::forget(lib);
                    out.loaded.push(name);
                }
                // The Display form only says "dlopen failed"; the source is dlerror's text.
                Err(e) => {
                    let why = std::error::Error::source(&e)
                        .map_or_else(|| e.to_string(), |s| s.to_string());
                    still.push((name, why));
                }
            }
        }
        pending = still;
        if pending.is_empty() || pending.len() == before {
            break;
        }
    }
    out.failed = pending
        .into_iter()
        .map(|(n, e)| format!("{n}: {e}"))
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn layout_is_one_folder_per_version() {
        let home = Home::at("/h");
        assert_eq!(
            gpu_dir(&home),
            Path::new("/h/runtime/onnxruntime-gpu-1.31.1")
        );
        assert_eq!(
            gpu_lib_path(&home),
            Path::new("/h/runtime/onnxruntime-gpu-1.31.1/libonnxruntime.so.1.31.1")
        );
        assert!(ORT_LIB.ends_with(ORT_GPU_VERSION));
    }

    #[test]
    fn members_are_selected_by_folder_and_name() {
        use Members::*;
        let t = |k, m| member_target(k, m);
        assert_eq!(
            t(OrtCapi, "onnxruntime/capi/libonnxruntime.so.1.31.1").as_deref(),
            Some("libonnxruntime.so.1.31.1")
        );
        assert_eq!(
            t(OrtCapi, "onnxruntime/capi/libonnxruntime_providers_cuda.so").as_deref(),
            Some("libonnxruntime_providers_cuda.so")
        );
        assert_eq!(
            t(
                OrtCapi,
                "onnxruntime/capi/onnxruntime_pybind11_state.cpython-311-x86_64-linux-gnu.so"
            ),
            None
        );
        assert_eq!(t(OrtCapi, "onnxruntime/capi/_pybind_state.py"), None);
        assert_eq!(
            t(NvidiaLib, "nvidia/cu13/lib/libcublasLt.so.13").as_deref(),
            Some("libcublasLt.so.13")
        );
        assert_eq!(
            t(
                NvidiaLib,
                "nvidia/cudnn/lib/libcudnn_engines_precompiled.so.9"
            )
            .as_deref(),
            Some("libcudnn_engines_precompiled.so.9")
        );
        assert_eq!(
            t(NvidiaLib, "nvidia/cu13/lib/libnvrtc-builtins.so.13.0").as_deref(),
            Some("libnvrtc-builtins.so.13.0")
        );
        assert_eq!(t(NvidiaLib, "nvidia/cu13/lib/libcudart_static.a"), None);
        assert_eq!(t(NvidiaLib, "nvidia/cu13/lib/libnvblas.so.13"), None);
        assert_eq!(t(NvidiaLib, "nvidia/cu13/lib/libcufftw.so.12"), None);
        assert_eq!(t(NvidiaLib, "nvidia/cu13/lib/libnvrtc.alt.so.13"), None);
        assert_eq!(t(NvidiaLib, "nvidia/cu13/include/cuda.h"), None);
        assert_eq!(t(NvidiaLib, "nvidia/__init__.py"), None);
        assert_eq!(t(NvidiaLib, "nvidia/cu13/lib/libfoo.so.13.py"), None);
        assert_eq!(t(NvidiaLib, "other/lib/libcublas.so.13"), None);
        assert_eq!(
            t(TensorrtLibs, "tensorrt_libs/libnvinfer.so.10").as_deref(),
            Some("libnvinfer.so.10")
        );
        assert_eq!(t(TensorrtLibs, "tensorrt_libs/__init__.py"), None);
        assert_eq!(t(TensorrtLibs, "nvidia/cu13/lib/libcublas.so.13"), None);
    }

    #[test]
    fn preload_order_follows_dependencies() {
        let names: Vec<String> = [
            "libonnxruntime.so.1.31.1",
            "libonnxruntime_providers_cuda.so",
            "libcudnn.so.9",
            "libcudnn_ops.so.9",
            "libcudnn_graph.so.9",
            "libcublas.so.13",
            "libcublasLt.so.13",
            "libcudart.so.13",
            "libnvinfer_plugin.so.10",
            "libnvinfer.so.10",
            "libcufft.so.12",
            "libnvJitLink.so.13",
        ]
        .map(String::from)
        .to_vec();
        let order = preload_order(&names);
        let pos = |n: &str| order.iter().position(|x| x == n).unwrap();
        assert!(!order.iter().any(|n| n.starts_with("libonnxruntime")));
        assert_eq!(order.len(), 10);
        assert!(pos("libcudart.so.13") < pos("libcublasLt.so.13"));
        assert!(pos("libcublasLt.so.13") < pos("libcublas.so.13"));
        assert!(pos("libnvJitLink.so.13") < pos("libcufft.so.12"));
        assert!(pos("libcudnn_graph.so.9") < pos("libcudnn_ops.so.9"));
        assert!(pos("libcudnn_ops.so.9") < pos("libcudnn.so.9"));
        assert!(pos("libnvinfer.so.10") < pos("libnvinfer_plugin.so.10"));
    }

    #[test]
    fn needed_libraries_come_first() {
        let lib = |n: &str, so: Option<&str>, needs: &[&str]| -> LibDeps {
            (
                n.to_string(),
                so.map(String::from),
                needs.iter().map(|s| s.to_string()).collect(),
            )
        };
        // The preferred order puts dependents first; what they need reorders them.
        let order = order_by_needs(vec![
            lib(
                "libcusolver.so.12",
                None,
                &["libcublasLt.so.13", "libc.so.6"],
            ),
            lib("libcudnn_adv.so.9", None, &["libcudnn_cnn.so.9"]),
            lib("libcudnn_cnn.so.9", None, &["libcudnn_graph.so.9"]),
            lib("libcudnn_graph.so.9", None, &[]),
            lib("libcublasLt.so.13.1.0.3", Some("libcublasLt.so.13"), &[]),
        ]);
        assert_eq!(
            order,
            [
                "libcudnn_graph.so.9",
                "libcudnn_cnn.so.9",
                "libcudnn_adv.so.9",
                "libcublasLt.so.13.1.0.3",
                "libcusolver.so.12",
            ]
        );
        // A cycle does not hang: the preferred order breaks it.
        let order = order_by_needs(vec![
            lib("liba.so", None, &["libb.so"]),
            lib("libb.so", None, &["liba.so"]),
        ]);
        assert_eq!(order, ["liba.so", "libb.so"]);
    }

    #[test]
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    fn elf_dependencies_are_read_from_the_dynamic_section() {
        // This test binary is a dynamically linked ELF file that needs libc.
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let (_, needed) = elf_dynamic(&exe).expect("an ELF file");
        assert!(
            needed.iter().any(|n| n.starts_with("libc.so")),
            "{needed:?}"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("libx.so"), b"\x7fELF not really").unwrap();
        assert_eq!(elf_dynamic(&dir.path().join("libx.so")), None);
        assert_eq!(elf_dynamic(&dir.path().join("missing.so")), None);
    }

    #[test]
    fn wheels_are_pinned() {
        let all = gpu_wheels(true).unwrap();
        let base = gpu_wheels(false).unwrap();
        assert_eq!(all.len(), base.len() + 1);
        assert!(base.iter().all(|w| !w.tensorrt));
        assert_eq!(base[0].wheel.package, "onnxruntime-gpu");
        assert_eq!(base[0].members, Members::OrtCapi);
        for w in &all {
            assert!(
                w.wheel
                    .version
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '.'),
                "{}",
                w.wheel.requirement()
            );
            if w.tensorrt {
                assert!(
                    w.wheel.version.starts_with("10."),
                    "TensorRT 10 is what ORT links"
                );
                assert!(w.wheel.hint.contains("pypi.nvidia.com"));
            } else {
                assert_eq!(w.wheel.sha256.len(), 64, "{}", w.wheel.requirement());
                assert!(w.wheel.sha256.chars().all(|c| c.is_ascii_hexdigit()));
                assert!(
                    w.wheel
                        .platform
                        .is_some_and(|p| p.starts_with("manylinux_"))
                );
            }
        }
        for p in [
            "nvidia-cuda-runtime",
            "nvidia-cublas",
            "nvidia-curand",
            "nvidia-cufft",
            "nvidia-cuda-nvrtc",
            "nvidia-cudnn-cu13",
        ] {
            assert!(base.iter().any(|w| w.wheel.package == p), "{p}");
        }
    }

    fn fake_wheel(path: &Path, members: &[(&str, &[u8])]) {
        let mut zw = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
        for (name, body) in members {
            zw.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            zw.write_all(body).unwrap();
        }
        zw.finish().unwrap();
    }

    const fn fake(package: &'static str, members: Members, tensorrt: bool) -> GpuWheel {
        GpuWheel {
            wheel: Wheel {
                package,
                version: "1",
                sha256: "",
                python_version: None,
                platform: None,
                hint: "",
            },
            members,
            tensorrt,
        }
    }

    const FAKES: [GpuWheel; 3] = [
        fake("ort", Members::OrtCapi, false),
        fake("cuda", Members::NvidiaLib, false),
        fake("trt", Members::TensorrtLibs, true),
    ];

    /// A wheels folder with the three fake wheels and a fetch that counts calls.
    struct Fixture {
        _tmp: tempfile::TempDir,
        wheels: PathBuf,
        dir: PathBuf,
        fetches: AtomicUsize,
        fail_on: Option<&'static str>,
    }

    impl Fixture {
        fn new() -> Fixture {
            let tmp = tempfile::tempdir().unwrap();
            let wheels = tmp.path().join("wheels");
            std::fs::create_dir_all(&wheels).unwrap();
            let dir = tmp.path().join("runtime/onnxruntime-gpu-1.31.1");
            Fixture {
                _tmp: tmp,
                wheels,
                dir,
                fetches: AtomicUsize::new(0),
                fail_on: None,
            }
        }

        fn fetch(&self, w: &Wheel) -> Result<PathBuf, RuntimeError> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            if self.fail_on == Some(w.package) {
                return Err(headstart_provision::ProvisionError::NoHome.into());
            }
            let p = self.wheels.join(format!("{}.whl", w.package));
            let members: Vec<(&str, &[u8])> = match w.package {
                "ort" => vec![
                    ("onnxruntime/capi/libonnxruntime.so.1.31.1", b"ort"),
                    ("onnxruntime/capi/libonnxruntime_providers_cuda.so", b"ep"),
                    ("onnxruntime/capi/onnxruntime_pybind11_state.so", b"py"),
                ],
                "cuda" => vec![
                    ("nvidia/cu13/lib/libcublas.so.13", b"blas"),
                    ("nvidia/cu13/lib/libcudart.so.13", b"rt"),
                    ("nvidia/cu13/include/cuda.h", b"h"),
                ],
                _ => vec![("tensorrt_libs/libnvinfer.so.10", b"trt")],
            };
            fake_wheel(&p, &members);
            Ok(p)
        }

        fn install(&self, tensorrt: bool) -> Result<(PathBuf, Provisioned), RuntimeError> {
            install_with(&self.dir, &FAKES, tensorrt, &|w| self.fetch(w), &|_| {})
        }

        fn listing(&self) -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(&self.dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        }
    }

    #[test]
    fn install_writes_one_folder_then_its_manifest() {
        let f = Fixture::new();
        let (lib, how) = f.install(false).unwrap();
        assert_eq!(how, Provisioned::Installed);
        assert_eq!(lib, f.dir.join("libonnxruntime.so.1.31.1"));
        assert_eq!(
            f.listing(),
            [
                MANIFEST,
                "libcublas.so.13",
                "libcudart.so.13",
                "libonnxruntime.so.1.31.1",
                "libonnxruntime_providers_cuda.so",
            ]
        );
        let m = manifest_of(&lib).unwrap();
        assert!(!m.tensorrt);
        assert_eq!(m.wheels, ["ort==1", "cuda==1"]);
        assert_eq!(m.preload, ["libcudart.so.13", "libcublas.so.13"]);
        assert_eq!(f.fetches.load(Ordering::SeqCst), 2);
        // The fetched wheels are removed once the folder is complete.
        assert_eq!(std::fs::read_dir(&f.wheels).unwrap().count(), 0);

        // Installed: nothing is fetched again.
        assert_eq!(f.install(false).unwrap().1, Provisioned::Cached);
        assert_eq!(f.fetches.load(Ordering::SeqCst), 2);

        // --tensorrt later adds TensorRT to the same folder.
        assert_eq!(f.install(true).unwrap().1, Provisioned::Installed);
        let m = manifest_of(&lib).unwrap();
        assert!(m.tensorrt);
        assert_eq!(
            m.preload.last().map(String::as_str),
            Some("libnvinfer.so.10")
        );
        assert!(f.dir.join("libnvinfer.so.10").is_file());
        // Only the TensorRT wheel was fetched for that.
        assert_eq!(f.fetches.load(Ordering::SeqCst), 3);
        assert_eq!(f.install(true).unwrap().1, Provisioned::Cached);
        assert_eq!(f.install(false).unwrap().1, Provisioned::Cached);
    }

    #[test]
    fn failed_install_is_not_installed_and_resumes() {
        let mut f = Fixture::new();
        f.fail_on = Some("cuda");
        assert!(f.install(false).is_err());
        // The runtime library is in place, but without a manifest the folder is not installed.
        assert!(f.dir.join("libonnxruntime.so.1.31.1").is_file());
        assert!(manifest_of(&f.dir.join("libonnxruntime.so.1.31.1")).is_none());
        assert!(
            !f.listing().iter().any(|n| n.starts_with('.')),
            "{:?}",
            f.listing()
        );
        f.fail_on = None;
        assert_eq!(f.install(false).unwrap().1, Provisioned::Installed);
        assert!(f.listing().contains(&MANIFEST.to_string()));
    }

    #[test]
    fn concurrent_installs_fetch_once() {
        let f = Fixture::new();
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| f.install(false).unwrap());
            }
        });
        assert_eq!(f.fetches.load(Ordering::SeqCst), 2);
        assert!(manifest_of(&f.dir.join(ORT_LIB)).is_some());
    }

    #[test]
    fn preload_reports_what_cannot_be_opened() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("libnot-elf.so.1"), b"not a library").unwrap();
        let p = preload(
            dir.path(),
            &["libnot-elf.so.1".to_string(), "libmissing.so.2".to_string()],
        );
        assert!(p.loaded.is_empty());
        assert_eq!(p.failed.len(), 2);
        let why = |name: &str| {
            p.failed
                .iter()
                .find_map(|f| f.strip_prefix(name)?.strip_prefix(": "))
                .unwrap_or_else(|| panic!("{name} not in {:?}", p.failed))
        };
        // The loader's reason, not just "dlopen failed".
        assert!(
            why("libmissing.so.2").contains("No such file"),
            "{:?}",
            p.failed
        );
        assert!(
            why("libnot-elf.so.1").len() > "dlopen failed".len(),
            "{:?}",
            p.failed
        );
    }
}

//! Pinned PyPI wheels fetched through pip and verified by sha256.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Home, ProvisionError};

/// A pinned wheel: `package==version` for one platform, with its sha256.
#[derive(Debug, Clone, Copy)]
pub struct Wheel {
    /// Distribution name on PyPI.
    pub package: &'static str,
    /// Exact version.
    pub version: &'static str,
    /// sha256 of the wheel file; empty when only the version is pinned (a wheel from an
    /// index whose files cannot be hashed ahead of time, such as NVIDIA's TensorRT wheels):
    /// then the download is trusted as pip fetched it and a line says so.
    pub sha256: &'static str,
    /// `--python-version` for pip (the wheel's CPython tag), if the wheel is not pure Python.
    pub python_version: Option<&'static str>,
    /// `--platform` for pip, if the wheel is platform-specific.
    pub platform: Option<&'static str>,
    /// What to set instead when pip cannot fetch it.
    pub hint: &'static str,
}

impl Wheel {
    /// `package==version`.
    pub fn requirement(&self) -> String {
        format!("{}=={}", self.package, self.version)
    }
}

/// Fetches `wheel` with pip into the cache's `wheels/` folder and checks its sha256.
///
/// A wheel already there with the right hash is reused. A wheel with the wrong
/// hash is removed and reported; nothing is installed from it. `log` receives one
/// line when a download starts.
pub fn fetch_wheel(
    home: &Home,
    wheel: &Wheel,
    log: &dyn Fn(&str),
) -> Result<PathBuf, ProvisionError> {
    let wheels = home.dir("wheels")?;
    let _lock = crate::Lock::acquire(&wheels.join(format!("{}.lock", wheel.package)))?;
    if let Some(found) = find_wheel(&wheels, wheel)? {
        if wheel.sha256.is_empty() || sha256_file(&found)? == wheel.sha256 {
            return Ok(found);
        }
        let _ = fs::remove_file(&found);
    }
    log(&format!(
        "fetching {} with pip into {}",
        wheel.requirement(),
        wheels.display()
    ));
    let tmp = wheels.join(format!(".download-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(ProvisionError::io(&tmp))?;
    let result = download_into(&tmp, wheel).and_then(|()| {
        let got = find_wheel(&tmp, wheel)?.ok_or_else(|| ProvisionError::NoWheel {
            package: wheel.requirement(),
            dir: tmp.clone(),
        })?;
        if wheel.sha256.is_empty() {
            log(&format!(
                "{}: no sha256 is pinned for this wheel (version pinned only); trusting the index pip used",
                wheel.requirement()
            ));
        } else {
            let actual = sha256_file(&got)?;
            if actual != wheel.sha256 {
                return Err(ProvisionError::Checksum {
                    package: wheel.requirement(),
                    path: got,
                    expected: wheel.sha256.to_string(),
                    actual,
                });
            }
        }
        let name = got.file_name().map(PathBuf::from).unwrap_or_default();
        let dest = wheels.join(name);
        fs::rename(&got, &dest).map_err(ProvisionError::io(&dest))?;
        Ok(dest)
    });
    let _ = fs::remove_dir_all(&tmp);
    result
}

fn download_into(dir: &Path, wheel: &Wheel) -> Result<(), ProvisionError> {
    let python = std::env::var("HEADSTART_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut cmd = Command::new(&python);
    cmd.args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args(["--disable-pip-version-check", "--quiet", "-d"])
        .arg(dir);
    if let Some(v) = wheel.python_version {
        cmd.args(["--python-version", v]);
    }
    if let Some(p) = wheel.platform {
        cmd.args(["--platform", p]);
    }
    if let Some(house) = std::env::var_os("HEADSTART_WHEELHOUSE").filter(|h| !h.is_empty()) {
        cmd.arg("--no-index").arg("--find-links").arg(house);
    }
    cmd.arg(wheel.requirement());
    let out = cmd.output().map_err(|source| ProvisionError::PipMissing {
        python: python.clone(),
        package: wheel.requirement(),
        source,
        hint: wheel.hint.to_string(),
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let hint = if stderr.contains("No module named pip") {
            format!("pip is not installed for {python}. {}", wheel.hint)
        } else {
            wheel.hint.to_string()
        };
        return Err(ProvisionError::PipFailed {
            package: wheel.requirement(),
            status: out
                .status
                .code()
                .map_or_else(|| "signal".into(), |c| c.to_string()),
            stderr: stderr.trim().to_string(),
            hint,
        });
    }
    Ok(())
}

/// The wheel file for `wheel` in `dir`, matched by normalised name and version.
fn find_wheel(dir: &Path, wheel: &Wheel) -> Result<Option<PathBuf>, ProvisionError> {
    let prefix = format!("{}-{}-", wheel.package.replace('-', "_"), wheel.version);
    let entries = fs::read_dir(dir).map_err(ProvisionError::io(dir))?;
    for entry in entries {
        let entry = entry.map_err(ProvisionError::io(dir))?;
        let name = entry.file_name().to_string_lossy().to_lowercase();
        if name.starts_with(&prefix.to_lowercase()) && name.ends_with(".whl") {
            return Ok(Some(entry.path()));
        }
    }
    Ok(None)
}

/// Reads one member of a wheel (a zip archive) into memory.
pub fn read_member(wheel: &Path, member: &str) -> Result<Vec<u8>, ProvisionError> {
    let err = |message: String| ProvisionError::Member {
        path: wheel.to_path_buf(),
        member: member.to_string(),
        message,
    };
    let file = fs::File::open(wheel).map_err(ProvisionError::io(wheel))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| err(e.to_string()))?;
    let mut entry = zip.by_name(member).map_err(|e| err(e.to_string()))?;
    let mut out = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0).min(1 << 30));
    entry
        .read_to_end(&mut out)
        .map_err(|e| err(e.to_string()))?;
    Ok(out)
}

/// Hex sha256 of a file, read in chunks (wheels can be larger than a gigabyte).
pub fn sha256_file(path: &Path) -> Result<String, ProvisionError> {
    use sha2::Digest;
    let mut f = fs::File::open(path).map_err(ProvisionError::io(path))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(ProvisionError::io(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Copies the members of `wheel` that `select` maps to a file name into `dest`.
///
/// Each file is streamed to a temporary file next to its target, synced and renamed
/// into place, so a crash never leaves a partial file under the final name. A target
/// that already exists with the member's size is kept (a rerun after a crash resumes).
/// Returns the file names now in `dest`, in the wheel's order. The caller holds
/// whatever lock guards `dest`.
pub fn extract_members(
    wheel: &Path,
    dest: &Path,
    select: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ProvisionError> {
    let file = fs::File::open(wheel).map_err(ProvisionError::io(wheel))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| ProvisionError::Member {
        path: wheel.to_path_buf(),
        member: "*".into(),
        message: e.to_string(),
    })?;
    fs::create_dir_all(dest).map_err(ProvisionError::io(dest))?;
    let mut names = Vec::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| ProvisionError::Member {
            path: wheel.to_path_buf(),
            member: format!("#{i}"),
            message: e.to_string(),
        })?;
        if !entry.is_file() {
            continue;
        }
        let member = entry.name().to_string();
        let Some(name) = select(&member) else {
            continue;
        };
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(ProvisionError::Member {
                path: wheel.to_path_buf(),
                member,
                message: format!("refusing to install it as `{name}`"),
            });
        }
        let target = dest.join(&name);
        let done = fs::metadata(&target).is_ok_and(|m| m.is_file() && m.len() == entry.size());
        if !done {
            let tmp = dest.join(format!(".{name}.tmp-{}", std::process::id()));
            let res = (|| {
                let mut out = fs::File::create(&tmp).map_err(ProvisionError::io(&tmp))?;
                std::io::copy(&mut entry, &mut out).map_err(|e| ProvisionError::Member {
                    path: wheel.to_path_buf(),
                    member: member.clone(),
                    message: e.to_string(),
                })?;
                out.sync_all().map_err(ProvisionError::io(&tmp))?;
                fs::rename(&tmp, &target).map_err(ProvisionError::io(&target))
            })();
            if res.is_err() {
                let _ = fs::remove_file(&tmp);
            }
            res?;
        }
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const FAKE: Wheel = Wheel {
        package: "headstart-test-pkg",
        version: "1.0",
        sha256: "0000000000000000000000000000000000000000000000000000000000000000",
        python_version: None,
        platform: None,
        hint: "set X instead",
    };

    #[test]
    fn read_member_reports_missing_member_with_paths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.whl");
        let mut zw = zip::ZipWriter::new(fs::File::create(&path).unwrap());
        zw.start_file("a/b.txt", zip::write::SimpleFileOptions::default())
            .unwrap();
        zw.write_all(b"hello").unwrap();
        zw.finish().unwrap();
        assert_eq!(read_member(&path, "a/b.txt").unwrap(), b"hello");
        let e = read_member(&path, "a/c.txt").unwrap_err().to_string();
        assert!(e.contains("a/c.txt") && e.contains("w.whl"), "{e}");
    }

    #[test]
    fn missing_python_names_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        // SAFETY of env mutation: this is the only test in this crate that sets it.
        let e = {
            let mut cmd_python = std::env::var("HEADSTART_PYTHON").ok();
            unsafe { std::env::set_var("HEADSTART_PYTHON", "/nonexistent/python3") };
            let r = fetch_wheel(&Home::at(dir.path()), &FAKE, &|_| {});
            match cmd_python.take() {
                Some(v) => unsafe { std::env::set_var("HEADSTART_PYTHON", v) },
                None => unsafe { std::env::remove_var("HEADSTART_PYTHON") },
            }
            r.unwrap_err().to_string()
        };
        assert!(e.contains("set X instead"), "{e}");
        assert!(e.contains("headstart-test-pkg==1.0"), "{e}");
    }

    #[test]
    fn extract_members_copies_selected_files_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.whl");
        let mut zw = zip::ZipWriter::new(fs::File::create(&path).unwrap());
        for (name, body) in [
            ("pkg/lib/liba.so.1", &b"aaaa"[..]),
            ("pkg/include/a.h", b"h"),
            ("pkg/lib/libb.so", b"bb"),
        ] {
            zw.start_file(name, zip::write::SimpleFileOptions::default())
                .unwrap();
            zw.write_all(body).unwrap();
        }
        zw.finish().unwrap();
        let select = |m: &str| {
            m.strip_prefix("pkg/lib/")
                .filter(|n| !n.contains('/'))
                .map(str::to_string)
        };
        let dest = dir.path().join("out");
        let names = extract_members(&path, &dest, &select).unwrap();
        assert_eq!(names, ["liba.so.1", "libb.so"]);
        assert_eq!(fs::read(dest.join("liba.so.1")).unwrap(), b"aaaa");
        assert!(!dest.join("a.h").exists());
        // A complete file is kept; a truncated one is replaced.
        fs::write(dest.join("libb.so"), b"b").unwrap();
        extract_members(&path, &dest, &select).unwrap();
        assert_eq!(fs::read(dest.join("libb.so")).unwrap(), b"bb");
        let mut all: Vec<_> = fs::read_dir(&dest)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        all.sort();
        assert_eq!(all, ["liba.so.1", "libb.so"]);
        let bad = |_: &str| Some("../x".to_string());
        assert!(extract_members(&path, &dest, &bad).is_err());
    }

    #[test]
    fn sha256_file_matches_in_memory_hash() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        fs::write(&p, &data).unwrap();
        assert_eq!(sha256_file(&p).unwrap(), crate::sha256_hex(&data));
    }
}

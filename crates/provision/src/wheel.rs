//! Pinned PyPI wheels fetched through pip and verified by sha256.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Home, ProvisionError, sha256_hex};

/// A pinned wheel: `package==version` for one platform, with its sha256.
#[derive(Debug, Clone, Copy)]
pub struct Wheel {
    /// Distribution name on PyPI.
    pub package: &'static str,
    /// Exact version.
    pub version: &'static str,
    /// sha256 of the wheel file.
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
        let bytes = fs::read(&found).map_err(ProvisionError::io(&found))?;
        if sha256_hex(&bytes) == wheel.sha256 {
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
        let bytes = fs::read(&got).map_err(ProvisionError::io(&got))?;
        let actual = sha256_hex(&bytes);
        if actual != wheel.sha256 {
            return Err(ProvisionError::Checksum {
                package: wheel.requirement(),
                path: got,
                expected: wheel.sha256.to_string(),
                actual,
            });
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
}

//! Per-image isolation: a panic in a decoder or a preprocessing step (a bug in
//! a dependency, reached by one hostile file) becomes that image's error, never
//! a failed run, and prints nothing: the message and the panic's location go
//! into the error row instead of a backtrace on the terminal.
//!
//! Every path that decodes images goes through [`decode`] (extract, predict,
//! int8 calibration, report thumbnails); preprocessing through [`guarded`].

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Once, RwLock};

use headstart_models::preprocess::Preprocess;

use crate::ExtractError;
use crate::tensor::RgbView;

thread_local! {
    /// Set while this thread runs inside [`guarded`].
    static GUARDED: Cell<bool> = const { Cell::new(false) };
    /// The message of the last panic caught on this thread.
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once per process) a panic hook that keeps quiet about panics
/// inside [`guarded`] and records them; other panics go to the previous hook.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !GUARDED.with(Cell::get) {
                return previous(info);
            }
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            let at = info
                .location()
                .map(|l| format!(" at {}:{}", short_path(l.file()), l.line()))
                .unwrap_or_default();
            CAUGHT.with(|c| *c.borrow_mut() = Some(format!("{msg}{at}")));
        }));
    });
}

/// A source path from its crate folder on (`zune-jpeg-0.5.15/src/idct/avx2.rs`),
/// without the machine's registry prefix.
fn short_path(file: &str) -> &str {
    file.find("/registry/src/")
        .and_then(|i| file[i + 14..].find('/').map(|j| &file[i + 15 + j..]))
        .unwrap_or(file)
}

/// Runs `f`, turning a panic inside it into `Err(message at file:line)`
/// without printing anything.
pub fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    let was = GUARDED.with(|g| g.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(was));
    result.map_err(|_| {
        CAUGHT
            .with(|c| c.borrow_mut().take())
            .unwrap_or_else(|| "unknown panic".into())
    })
}

/// [`crate::decode::decode_for`] with the decoders' panics caught: a panic
/// becomes [`ExtractError::DecoderPanicked`].
pub fn decode<'a>(
    bytes: &[u8],
    buf: &'a mut Vec<u8>,
    recipe: &Preprocess,
) -> Result<RgbView<&'a [u8]>, ExtractError> {
    guarded(move || {
        injected(bytes);
        crate::decode::decode_for(bytes, buf, recipe)
    })
    .map_err(ExtractError::DecoderPanicked)?
}

/// A test seam: images for which the function returns true make the decoder
/// panic (as a decoder bug would), so tests can show what a run does then.
static INJECT: RwLock<Option<Predicate>> = RwLock::new(None);

/// Which images the seam makes panic.
type Predicate = fn(&[u8]) -> bool;

fn injected(bytes: &[u8]) {
    let inject = *INJECT.read().unwrap_or_else(|e| e.into_inner());
    if inject.is_some_and(|f| f(bytes)) {
        panic!("injected decoder panic (test seam)");
    }
}

/// Makes the decoder panic on images for which `f` returns true (`None`
/// stops it). For tests of what a decoder bug does to a run; process-wide.
#[doc(hidden)]
pub fn inject_decoder_panic(f: Option<Predicate>) {
    *INJECT.write().unwrap_or_else(|e| e.into_inner()) = f;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_with_its_location() {
        let e = guarded(|| -> u8 { panic!("boom {}", 7) }).unwrap_err();
        assert!(e.starts_with("boom 7 at "), "{e}");
        assert!(e.contains("isolate.rs:"), "{e}");
        assert_eq!(guarded(|| 5), Ok(5));
        // Nested guards and a later panic outside keep working.
        let inner = guarded(|| guarded(|| -> () { panic!("inner") }).unwrap_err());
        assert!(inner.unwrap().starts_with("inner"));
        assert_eq!(
            short_path(
                "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/zune-jpeg-0.5.15/src/idct/avx2.rs"
            ),
            "zune-jpeg-0.5.15/src/idct/avx2.rs"
        );
    }
}

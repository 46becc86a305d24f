//! Exit statuses and error messages: the binary's usage errors, and library
//! errors shown with flag names (`batch_size` is `--batch-size`).

use anyhow::Result;

/// Exit status for a failed command.
pub const EXIT_ERROR: u8 = 1;
/// Exit status for a usage error: a flag's value or combination is invalid, and
/// nothing was done.
pub const EXIT_USAGE: u8 = 2;
/// Exit status when a run finished but some input files failed.
pub const EXIT_PARTIAL: u8 = 3;

/// A usage error found by the binary's own checks of the flags.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// Fails with a usage error saying `why` unless `ok`.
pub fn require(ok: bool, why: impl FnOnce() -> String) -> Result<()> {
    if ok { Ok(()) } else { Err(Usage(why()).into()) }
}

/// A library's parameter error (field name, value, message), if `e` is one,
/// also inside the libraries' pass-through wrappers (whose `source` skips it).
fn param_error<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<(&'static str, &'a str, &'a str)> {
    use headstart_extract::ExtractError;
    use headstart_models::ModelError;
    use headstart_runtime::RuntimeError;
    use headstart_serve::ServeError;
    if let Some(e) = e.downcast_ref::<ServeError>() {
        return match e {
            ServeError::Param {
                name,
                value,
                message,
            } => Some((name, value, message)),
            ServeError::Extract(inner) => param_error(inner.as_ref()),
            ServeError::Model(inner) => param_error(inner),
            _ => None,
        };
    }
    if let Some(e) = e.downcast_ref::<ExtractError>() {
        return match e {
            ExtractError::Param {
                name,
                value,
                message,
            } => Some((name, value, message)),
            ExtractError::Runtime(inner) => param_error(inner),
            ExtractError::Model(inner) => param_error(inner),
            _ => None,
        };
    }
    if let Some(e) = e.downcast_ref::<RuntimeError>() {
        return match e {
            RuntimeError::Param {
                name,
                value,
                message,
            } => Some((name, value, message)),
            RuntimeError::Model(inner) => param_error(inner),
            _ => None,
        };
    }
    match e.downcast_ref::<ModelError>() {
        Some(ModelError::Param {
            name,
            value,
            message,
        }) => Some((name, value, message)),
        _ => None,
    }
}

/// The flag of a library's field: `batch_size` is `--batch-size`.
fn flag(field: &str) -> String {
    format!("--{}", field.replace('_', "-"))
}

/// The message for a failed command: a library's parameter error names the
/// flag (`batch_size` is `--batch-size`), and so does an unsupported
/// combination of fit parameters; the rest is the error and its causes.
pub fn message(e: &anyhow::Error) -> String {
    if let Some((name, value, message)) = e.chain().find_map(param_error) {
        return format!("invalid {} `{value}`: {message}", flag(name));
    }
    let unsupported = |c: &(dyn std::error::Error + 'static)| match c.downcast_ref() {
        Some(headstart_fit::FitError::Unsupported {
            params: [(a, x), (b, y)],
            reason,
        }) => Some(format!(
            "unsupported: {} {x} with {} {y} ({reason})",
            flag(a),
            flag(b)
        )),
        _ => None,
    };
    if let Some(m) = e.chain().find_map(unsupported) {
        return m;
    }
    // Each cause once: library errors already quote their source (`path: io
    // error`), so a cause that the message so far contains is not repeated.
    let mut msg = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if !msg.contains(&c) {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(&c);
        }
    }
    msg
}

/// Whether `e` refuses an output before any work (a folder that is not
/// headstart's, or not a folder), as a library reports it or passes it on.
fn refused_output(e: &(dyn std::error::Error + 'static)) -> bool {
    use headstart_files::FilesError;
    let refused = |f: &FilesError| !matches!(f, FilesError::Io { .. });
    if let Some(f) = e.downcast_ref::<FilesError>() {
        return refused(f);
    }
    if let Some(headstart_fit::FitError::Files(f)) = e.downcast_ref() {
        return refused(f);
    }
    if let Some(headstart_serve::ServeError::Files(f)) = e.downcast_ref() {
        return refused(f);
    }
    use headstart_cache::CacheError;
    let cache = match e.downcast_ref() {
        Some(headstart_extract::ExtractError::Cache(c)) => Some(c),
        _ => e.downcast_ref::<CacheError>(),
    };
    matches!(cache, Some(CacheError::NotOurs { .. }))
}

/// The model error in `e`, also inside the libraries' pass-through wrappers.
fn model_error<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a headstart_models::ModelError> {
    use headstart_extract::ExtractError;
    use headstart_runtime::RuntimeError;
    use headstart_serve::ServeError;
    match e.downcast_ref::<ServeError>() {
        Some(ServeError::Model(m)) => return Some(m),
        Some(ServeError::Extract(inner)) => return model_error(inner.as_ref()),
        _ => {}
    }
    match e.downcast_ref::<ExtractError>() {
        Some(ExtractError::Model(m)) => return Some(m),
        Some(ExtractError::Runtime(inner)) => return model_error(inner),
        _ => {}
    }
    if let Some(RuntimeError::Model(m)) = e.downcast_ref::<RuntimeError>() {
        return Some(m);
    }
    e.downcast_ref()
}

/// The exit status for a failed command: [`EXIT_USAGE`] for the binary's usage
/// errors, the libraries' parameter errors, unknown models and refused
/// outputs (nothing was done), [`EXIT_ERROR`] for the rest.
pub fn exit_status(e: &anyhow::Error) -> u8 {
    use headstart_fit::FitError;
    use headstart_models::ModelError;
    let usage = e.chain().any(|c| {
        c.is::<Usage>()
            || param_error(c).is_some()
            || refused_output(c)
            || matches!(
                c.downcast_ref(),
                Some(
                    FitError::InvalidParam { .. }
                        | FitError::Parse { .. }
                        | FitError::Unsupported { .. }
                )
            )
            || matches!(
                model_error(c),
                Some(ModelError::UnknownModel { .. } | ModelError::Preprocess { .. })
            )
    });
    if usage { EXIT_USAGE } else { EXIT_ERROR }
}

#[cfg(test)]
mod tests {
    use super::*;
    use headstart_runtime::Device;

    /// Libraries name fields (`batch_size`); the binary's message names the flag
    /// and the exit status says "usage".
    #[test]
    fn library_parameter_errors_name_the_flag() {
        let e: anyhow::Error = "cuda:x".parse::<Device>().unwrap_err().into();
        assert!(
            message(&e).starts_with("invalid --device `cuda:x`:"),
            "{}",
            message(&e)
        );
        assert_eq!(exit_status(&e), EXIT_USAGE);
        let e = headstart_extract::Extractor::builder("in", "out")
            .batch_size(0)
            .build()
            .unwrap_err();
        let e = anyhow::Error::from(e).context("extracting");
        assert_eq!(
            message(&e),
            "invalid --batch-size `0`: must be between 1 and 4096"
        );
        assert_eq!(exit_status(&e), EXIT_USAGE);
        // Inside a pass-through wrapper too.
        let inner = headstart_models::ModelError::Param {
            name: "features",
            value: String::new(),
            message: "needs `auto` or a tensor name".into(),
        };
        let e: anyhow::Error = headstart_serve::ServeError::Model(inner).into();
        assert!(
            message(&e).starts_with("invalid --features ``:"),
            "{}",
            message(&e)
        );
        assert_eq!(exit_status(&e), EXIT_USAGE);
        let e = anyhow::anyhow!("disk full");
        assert_eq!(
            (message(&e).as_str(), exit_status(&e)),
            ("disk full", EXIT_ERROR)
        );
    }

    /// Library errors say what is wrong; the fix line names the flags, also for
    /// an error inside another library's (transparent) wrapper variant.
    #[test]
    fn library_errors_get_the_cli_fix() {
        use headstart_fit::{ClassWeight, FitParams, Solver};
        let e = anyhow::Error::from(headstart_cache::CacheError::NotACache { path: "c".into() });
        assert_eq!(message(&e), "c: not a headstart cache (no cache.json)");
        assert_eq!(
            crate::cmd::hint::fix(&e).as_deref(),
            Some("create it with `headstart extract INPUT --out c`")
        );
        let e = headstart_extract::ExtractError::DifferentInput {
            cache: "c".into(),
            input: "i".into(),
            live: 1,
        };
        let e = anyhow::Error::from(headstart_serve::ServeError::from(e)).context("extracting");
        assert_eq!(
            crate::cmd::hint::fix(&e).as_deref(),
            Some("use another --out directory, or pass --prune to replace them")
        );
        let e = FitParams::new()
            .solver(Solver::Linfa)
            .class_weight(ClassWeight::Balanced)
            .check()
            .unwrap_err();
        let e = anyhow::Error::from(e);
        assert_eq!(
            message(&e),
            "unsupported: --class-weight balanced with --solver linfa (linfa-logistic has no sample weights)"
        );
        assert_eq!(exit_status(&e), EXIT_USAGE);
        assert_eq!(crate::cmd::hint::fix(&anyhow::anyhow!("disk full")), None);
    }
}

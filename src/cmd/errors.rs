//! Exit statuses and error messages: library errors shown with flag names
//! (`batch_size` is `--batch-size`) and their fix lines.

use headstart_api::{Error, ErrorKind};

/// Exit status for a failed command.
pub const EXIT_ERROR: u8 = 1;
/// Exit status for a usage error: a flag's value or combination is invalid, or
/// an output folder is not headstart's, and nothing was done.
pub const EXIT_USAGE: u8 = 2;
/// Exit status when a run finished but some input files failed.
pub const EXIT_PARTIAL: u8 = 3;

/// The library error in `e`'s chain, if any.
fn library(e: &anyhow::Error) -> Option<&Error> {
    e.chain().find_map(|c| c.downcast_ref::<Error>())
}

/// The flag of a library's field: `batch_size` is `--batch-size`.
fn flag(field: &str) -> String {
    format!("--{}", field.replace('_', "-"))
}

/// The message for a failed command: an option error names the flag, and so
/// does an unsupported combination; the rest is the error and its causes.
pub fn message(e: &anyhow::Error) -> String {
    if let Some(lib) = library(e) {
        if let Some((name, value, message)) = lib.parameter() {
            return match value {
                "" => format!("invalid {}: {message}", flag(name)),
                v => format!("invalid {} `{v}`: {message}", flag(name)),
            };
        }
        if let Some(([(a, x), (b, y)], reason)) = lib.unsupported() {
            return format!(
                "unsupported: {} {x} with {} {y} ({reason})",
                flag(a),
                flag(b)
            );
        }
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

/// The fix line of a failed command: that of the first cause that has one.
pub fn fix(e: &anyhow::Error) -> Option<String> {
    e.chain().find_map(headstart_api::fix_of)
}

/// The exit status for a failed command: [`EXIT_USAGE`] when nothing was done
/// because of the options, [`EXIT_ERROR`] for the rest.
pub fn exit_status(e: &anyhow::Error) -> u8 {
    let usage = e
        .chain()
        .any(|c| headstart_api::kind_of(c) == ErrorKind::Usage);
    if usage { EXIT_USAGE } else { EXIT_ERROR }
}

#[cfg(test)]
mod tests {
    use super::*;
    use headstart_api::Env;
    use headstart_api::options::{ExtractOptions, FitOptions};

    /// Libraries name fields (`batch_size`); the binary's message names the flag
    /// and the exit status says "usage".
    #[test]
    fn library_parameter_errors_name_the_flag() {
        let env = Env::new(Some("/nonexistent-home".into()), None).unwrap();
        let extract = |o: &ExtractOptions| {
            let (input, out) = ("in".as_ref(), "out".as_ref());
            headstart_api::extract(&env, input, out, o, &headstart_api::NoProgress).unwrap_err()
        };
        let o = ExtractOptions {
            batch_size: 0,
            ..ExtractOptions::default()
        };
        let e = anyhow::Error::from(extract(&o)).context("extracting");
        assert_eq!(
            message(&e),
            "invalid --batch-size `0`: must be between 1 and 4096"
        );
        assert_eq!(exit_status(&e), EXIT_USAGE);
        let mut o = ExtractOptions::default();
        o.device.device = "cuda:x".into();
        let e = anyhow::Error::from(extract(&o));
        assert!(
            message(&e).starts_with("invalid --device `cuda:x`:"),
            "{}",
            message(&e)
        );
        let mut o = FitOptions::default();
        o.head.solver = "linfa".into();
        o.head.class_weight = "balanced".into();
        let e = anyhow::Error::from(headstart_api::fit(&env, &[], "h".as_ref(), &o).unwrap_err());
        assert_eq!(
            message(&e),
            "unsupported: --class-weight balanced with --solver linfa (linfa-logistic has no sample weights)"
        );
        assert_eq!(exit_status(&e), EXIT_USAGE);
        let e = anyhow::anyhow!("disk full");
        assert_eq!(
            (message(&e).as_str(), exit_status(&e), fix(&e)),
            ("disk full", EXIT_ERROR, None)
        );
    }

    /// Library errors say what is wrong; the fix line names the flags, also for
    /// an error inside another library's (transparent) wrapper variant.
    #[test]
    fn library_errors_get_the_cli_fix() {
        let e = Error::from(headstart_cache::CacheError::NotACache { path: "c".into() });
        let e = anyhow::Error::from(e);
        assert_eq!(message(&e), "c: not a headstart cache (no cache.json)");
        assert_eq!(
            fix(&e).as_deref(),
            Some("create it with `headstart extract INPUT --out c`")
        );
        let inner = headstart_extract::ExtractError::DifferentInput {
            cache: "c".into(),
            input: "i".into(),
            live: 1,
        };
        let e = anyhow::Error::from(Error::from(headstart_serve::ServeError::from(inner)));
        assert_eq!(
            fix(&e).as_deref(),
            Some("use another --out directory, or pass --prune to replace them")
        );
    }
}

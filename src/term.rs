//! Text for the terminal: file names may hold control characters, escape
//! sequences, newlines or bidi overrides that would rewrite what a person sees.

use std::borrow::Cow;

/// `s` with every control character and bidirectional-formatting character
/// escaped (`\n`, `\u{1b}`, `\u{202e}`, ...). The line breaks before the `fix: `
/// of headstart's own messages are kept (split before escaping, so a backslash
/// in a file name cannot fake one).
pub fn escape(s: &str) -> Cow<'_, str> {
    if let Cow::Borrowed(_) = headstart_files::escape(s) {
        return Cow::Borrowed(s);
    }
    let parts: Vec<Cow<str>> = s.split(FIX).map(headstart_files::escape).collect();
    Cow::Owned(parts.join(FIX))
}

/// The line break that starts the fix in library messages.
const FIX: &str = "\nfix: ";

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: file names were printed raw, so a name could clear the
    /// screen, fake a line or reverse the text after it.
    #[test]
    fn control_and_bidi_characters_in_file_names_are_escaped() {
        assert_eq!(escape("cat/a.jpg"), "cat/a.jpg");
        assert_eq!(
            escape("a\u{1b}[2Jb\nc\rd\u{202e}gpj.exe\tx"),
            "a\\u{1b}[2Jb\\nc\\rd\\u{202e}gpj.exe\\tx"
        );
        assert_eq!(
            escape("x/\u{7}.png: bad\nfix: move it"),
            "x/\\u{7}.png: bad\nfix: move it"
        );
        assert_eq!(escape("naïve/日本.png"), "naïve/日本.png");
        // A literal backslash-n in a name is not a line break.
        assert_eq!(escape("a\\nfix: \u{7}"), "a\\nfix: \\u{7}");
    }
}

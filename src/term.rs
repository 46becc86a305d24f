//! Text for the terminal: file names may hold control characters, escape
//! sequences, newlines or bidi overrides that would rewrite what a person sees.

use std::borrow::Cow;

/// `s` with every control character and bidirectional-formatting character
/// escaped (`\n`, `\u{1b}`, `\u{202e}`, ...). The line breaks before the `fix: `
/// of headstart's own messages are kept (split before escaping, so a backslash
/// in a file name cannot fake one).
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let parts: Vec<String> = s.split(FIX).map(escape_all).collect();
    Cow::Owned(parts.join(FIX))
}

/// The line break that starts the fix in library messages.
const FIX: &str = "\nfix: ";

fn escape_all(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// [`escape`] for each line of a multi-line text (tables, summaries): the line
/// breaks stay, anything else that moves the cursor is escaped.
pub fn escape_lines(s: &str) -> String {
    s.split('\n').map(escape).collect::<Vec<_>>().join("\n")
}

/// Characters that change how a terminal shows the text around them.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

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
        assert_eq!(escape_lines("a\u{1b}b\nc\rd\n"), "a\\u{1b}b\nc\\rd\n");
    }
}

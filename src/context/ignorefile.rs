//! Reading a .dockerignore file into pattern lines, as BuildKit's `ReadAll` does.

/// Splits ignore-file text into pattern lines: a UTF-8 BOM is dropped, lines
/// starting with `#` (in column one only) are comments, whitespace around a
/// pattern and after a `!` is trimmed, and the pattern is cleaned like a path
/// with one leading `/` removed (patterns are relative to the context root).
pub(crate) fn read_patterns(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for raw in text.split('\n') {
        // Go's line scanner drops one `\r` before each `\n`.
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            cleaned = super::goclean::clean(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
        }
        if invert {
            cleaned.insert(0, '!');
        }
        out.push(cleaned);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::read_patterns;

    #[test]
    fn comments_blank_lines_and_whitespace() {
        let text = "\u{feff}# comment\n\n  a  \n #not-a-comment\r\nb\r\n\t\n";
        assert_eq!(read_patterns(text), vec!["a", "#not-a-comment", "b"]);
    }

    #[test]
    fn exceptions_are_trimmed_and_cleaned() {
        assert_eq!(read_patterns("! a/./b/\n!/c\n"), vec!["!a/b", "!c"]);
        // A bare `!` is kept so that the matcher can reject it like Docker.
        assert_eq!(read_patterns("!\n"), vec!["!"]);
    }

    #[test]
    fn leading_and_trailing_slashes() {
        assert_eq!(read_patterns("/a\n/b/\nc/\n/\n"), vec!["a", "b", "c", "/"]);
    }

    #[test]
    fn paths_are_cleaned() {
        assert_eq!(
            read_patterns("./a\na/../b\n../x\n.\n**/\n"),
            vec!["a", "b", "../x", ".", "**"]
        );
    }

    #[test]
    fn comment_only_in_first_column() {
        assert_eq!(read_patterns("#x\n  #y\n"), vec!["#y"]);
    }
}

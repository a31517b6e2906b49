//! Small text helpers with Go's exact semantics (the frontend is written in Go, and a
//! different notion of "space" or "clean path" would make us read a different file).

/// Go's `unicode.IsSpace` (the Unicode White_Space property, the same set as Rust's).
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// Go's `unicode.IsSpace(rune(b))` for code that walks a string byte by byte: bytes 0x85
/// and 0xA0 (which occur inside UTF-8 sequences) count as space there.
pub(crate) fn is_space_byte(b: u8) -> bool {
    char::from(b).is_whitespace()
}

/// The frontend's `[\t\v\f\r ]` class (no newline, no Unicode spaces).
pub(crate) fn is_sep(c: char) -> bool {
    matches!(c, '\t' | '\u{0b}' | '\u{0c}' | '\r' | ' ')
}

/// Go's `regexp.MustCompile("[\t\v\f\r ]+").Split(s, 2)`: the text before the first run of
/// separators and everything after that run.
pub(crate) fn split_once_sep(s: &str) -> (&str, Option<&str>) {
    match s.find(is_sep) {
        None => (s, None),
        Some(i) => {
            let rest = &s[i..];
            let after = rest.trim_start_matches(is_sep);
            (&s[..i], Some(after))
        }
    }
}

/// Go's `regexp.MustCompile("[\t\v\f\r ]+").Split(s, -1)`, for a string that does not start
/// with a separator (callers pass trimmed text).
pub(crate) fn split_all_sep(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        match split_once_sep(rest) {
            (head, None) => {
                out.push(head.to_string());
                return out;
            }
            (head, Some(tail)) => {
                out.push(head.to_string());
                rest = tail;
            }
        }
    }
}

/// Go's `path.Clean` for `/`-separated paths.
pub(crate) fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if matches!(parts.last(), Some(last) if *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// `path.Join(".", path.Join("/", src))`: how the frontend turns a source into a context
/// path (`normalizeContextPaths`). `None` means the context root: the whole context.
pub(crate) fn context_path(src: &str) -> Option<String> {
    let rooted = clean(&format!("/{src}"));
    if rooted == "/" {
        None
    } else {
        Some(rooted[1..].to_string())
    }
}

/// The frontend's `containsWildcards`: `*`, `?` or `[` not escaped by a backslash.
pub(crate) fn contains_wildcards(name: &str) -> bool {
    let b = name.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'*' | b'?' | b'[' => return true,
            b'\\' => i += 1,
            _ => {}
        }
        i += 1;
    }
    false
}

/// The first line of an instruction, trimmed and cut to at most 120 characters, for messages.
pub(crate) fn summary(first_line: &str) -> String {
    let t = first_line.trim();
    if t.chars().count() <= 120 {
        return t.to_string();
    }
    let cut: String = t.chars().take(117).collect();
    format!("{cut}...")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go() {
        for (i, want) in [
            ("", "."),
            ("a//b/./c/..", "a/b"),
            ("/../a", "/a"),
            ("../../a", "../../a"),
            ("/", "/"),
            ("a/b/../../..", ".."),
        ] {
            assert_eq!(clean(i), want, "{i:?}");
        }
    }

    #[test]
    fn context_paths_are_relative_and_cleaned() {
        assert_eq!(context_path("."), None);
        assert_eq!(context_path("/"), None);
        assert_eq!(context_path(""), None);
        assert_eq!(context_path("a/.."), None);
        assert_eq!(context_path("../x"), Some("x".into()));
        assert_eq!(context_path("./src//a/"), Some("src/a".into()));
        assert_eq!(context_path("/abs/f"), Some("abs/f".into()));
    }

    #[test]
    fn wildcards_and_escapes() {
        assert!(contains_wildcards("a/*.go"));
        assert!(contains_wildcards("f?le"));
        assert!(contains_wildcards("[ab]"));
        assert!(!contains_wildcards("a\\*b"));
        assert!(!contains_wildcards("plain/path"));
    }

    #[test]
    fn separator_splits() {
        assert_eq!(split_once_sep("COPY  a b"), ("COPY", Some("a b")));
        assert_eq!(split_once_sep("FROM"), ("FROM", None));
        assert_eq!(split_all_sep("a \t b\u{0b}c"), vec!["a", "b", "c"]);
        // U+00A0 is a space for Go's TrimSpace but not a separator here.
        assert_eq!(split_all_sep("a\u{a0}b"), vec!["a\u{a0}b"]);
    }

    #[test]
    fn summary_is_bounded() {
        assert_eq!(summary("  COPY a b  "), "COPY a b");
        let long = "x".repeat(300);
        assert_eq!(summary(&long).chars().count(), 120);
    }
}

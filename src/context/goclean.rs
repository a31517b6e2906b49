//! Lexical path cleaning with the exact rules of Go's `path/filepath.Clean`.
//!
//! Docker cleans every .dockerignore pattern this way before matching, so a
//! pattern such as `./a/../b/` must become `b` here too or we would disagree
//! with the builder on which files are sent.

/// Returns the shortest lexically equivalent form of a `/`-separated path.
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
                    // Go keeps leading `..` of relative paths; `/..` is `/`.
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

/// Go's `filepath.Dir` for a cleaned relative path: everything before the last `/`, or `.`.
pub(crate) fn dir(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => ".",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_go_filepath_clean() {
        let cases = [
            ("", "."),
            (".", "."),
            ("./", "."),
            ("a/", "a"),
            ("a//b", "a/b"),
            ("./a/./b/", "a/b"),
            ("a/../b", "b"),
            ("a/b/../../..", ".."),
            ("../../a", "../../a"),
            ("/", "/"),
            ("//", "/"),
            ("/../a", "/a"),
            ("/a/b/..", "/a"),
            ("a/../..", ".."),
            ("!a/../b", "b"),
            ("**/", "**"),
            ("abc/def/../../..", ".."),
        ];
        for (input, want) in cases {
            assert_eq!(clean(input), want, "clean({input:?})");
        }
    }

    #[test]
    fn dir_of_paths() {
        assert_eq!(dir("a"), ".");
        assert_eq!(dir("a/b"), "a");
        assert_eq!(dir("a/b/c"), "a/b");
    }
}

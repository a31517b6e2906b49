//! The `# syntax=` directive (and its `//` and JSON spellings, and the BUILDKIT_SYNTAX
//! build arg): which frontend will read the file. Only the Dockerfile 1.x frontend is
//! understood here.

use super::text::is_space;

/// The `syntax` directive's value as written (trimmed), if the file has one.
pub(crate) fn detect(text: &str) -> Option<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = match text.split_once('\n') {
        Some((first, rest)) if first.starts_with("#!") => rest,
        None if text.starts_with("#!") => "",
        _ => text,
    };
    from_comments(text, "#")
        .or_else(|| from_comments(text, "//"))
        .or_else(|| from_json(text))
}

/// Directives at the top of the file, each `<prefix> key=value`.
fn from_comments(text: &str, prefix: &str) -> Option<String> {
    let mut seen: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let body = line.strip_prefix(prefix)?;
        let (key, value) = split_directive(body.trim_start_matches(is_space))?;
        let key = key.to_ascii_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            return None;
        }
        if seen.contains(&key) {
            return None;
        }
        if key == "syntax" {
            return Some(value.to_string());
        }
        seen.push(key);
    }
    None
}

fn from_json(text: &str) -> Option<String> {
    let v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).ok()?;
    v.get("syntax")?.as_str().map(str::to_string)
}

/// `key = value` with Go regexp `\s` around `=` and a lazily matched value.
fn split_directive(s: &str) -> Option<(&str, &str)> {
    let re_space = |c: char| matches!(c, '\t' | '\n' | '\u{0c}' | '\r' | ' ');
    if !s.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let key_end = s
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(s.len());
    let rest = s[key_end..]
        .trim_start_matches(re_space)
        .strip_prefix('=')?;
    let last = rest.chars().last()?;
    let trimmed = rest.trim_start_matches(re_space);
    let value = if trimmed.is_empty() {
        &rest[rest.len() - last.len_utf8()..]
    } else {
        trimmed.trim_end_matches(re_space)
    };
    Some((&s[..key_end], value))
}

/// Whether `syntax` names the Dockerfile 1.x frontend this module mirrors (or the built-in
/// one, `dockerfile.v0`, which BUILDKIT_SYNTAX may name).
pub(crate) fn is_understood(syntax: &str) -> bool {
    let image = syntax.split(' ').next().unwrap_or_default();
    image == "dockerfile.v0"
        || image.starts_with("docker/dockerfile:1")
        || image.starts_with("docker.io/docker/dockerfile:1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_all_spellings() {
        assert_eq!(
            detect("# syntax=docker/dockerfile:1\nFROM a").as_deref(),
            Some("docker/dockerfile:1")
        );
        assert_eq!(
            detect("#!/usr/bin/env x\n# syntax = a/b \nFROM a").as_deref(),
            Some("a/b")
        );
        assert_eq!(detect("# escape=`\n# syntax=x/y\n").as_deref(), Some("x/y"));
        assert_eq!(detect("//syntax=x/y\n").as_deref(), Some("x/y"));
        assert_eq!(detect("{\"syntax\": \"x/y\"}").as_deref(), Some("x/y"));
        assert_eq!(detect("FROM a\n# syntax=x/y\n"), None);
        assert_eq!(detect("# hello\n# syntax=x/y\n"), None);
        assert_eq!(detect("\n# syntax=x/y\n"), None);
    }

    #[test]
    fn understood_frontends() {
        assert!(is_understood("docker/dockerfile:1"));
        assert!(is_understood("docker/dockerfile:1.7-labs"));
        assert!(is_understood("docker.io/docker/dockerfile:1.4@sha256:abc"));
        assert!(!is_understood("docker/dockerfile"));
        assert!(!is_understood("docker/dockerfile-upstream:master"));
        assert!(!is_understood("example.com/my/frontend:1"));
    }
}

//! One .dockerignore pattern: syntax check, translation to a matcher, matching.
//!
//! Docker does not use glob matching directly: it validates a pattern with Go's
//! `filepath.Match` and then translates it, character by character, into a Go
//! regular expression (`*` -> `[^/]*`, `**` -> `(.*/)?`, ...). Characters that
//! are regex syntax but not glob syntax are passed through, so `a+b` really is a
//! regex in some Docker versions. We reproduce the translation and then convert
//! the Go (RE2) regex text into the `regex` crate's syntax, so that odd patterns
//! behave as they do in Docker rather than as a "cleaner" glob would.

use super::Dialect;

/// Why a pattern cannot be used; Docker rejects the same patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PatternError {
    /// The pattern text (empty until the caller knows the line).
    pub(crate) pattern: String,
    /// What is wrong with it.
    pub(crate) reason: String,
}

impl PatternError {
    fn new(reason: impl Into<String>) -> PatternError {
        PatternError {
            pattern: String::new(),
            reason: reason.into(),
        }
    }
}

/// How a compiled pattern is tested against a path.
#[derive(Debug)]
enum Test {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Regex(regex::Regex),
    /// Docker only compiles the regex when the pattern is first evaluated, so an
    /// uncompilable regex is an error only if the pattern is ever consulted.
    Broken(String),
}

/// A cleaned pattern ready for matching.
#[derive(Debug)]
pub(crate) struct Pattern {
    /// Cleaned pattern text without the leading `!`.
    pub(crate) text: String,
    /// True for `!` lines, which re-include what earlier lines excluded.
    pub(crate) exclusion: bool,
    /// Number of `/`-separated components of `text` (Docker's `dirs`).
    pub(crate) depth: usize,
    test: Test,
}

impl Pattern {
    /// Builds a pattern from one line of the ignore list the way Docker's
    /// `PatternMatcher` constructor does (trim, clean, `!`, syntax check).
    /// Returns `Ok(None)` for lines that carry no pattern.
    pub(crate) fn parse(line: &str, dialect: Dialect) -> Result<Option<Pattern>, PatternError> {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        let cleaned = super::goclean::clean(trimmed);
        let (exclusion, text) = match cleaned.strip_prefix('!') {
            Some("") => {
                return Err(PatternError::new("`!` alone is not a valid exception"));
            }
            Some(rest) => (true, rest.to_string()),
            None => (false, cleaned),
        };
        check_glob_syntax(&text)?;
        let depth = text.split('/').count();
        let test = match dialect {
            Dialect::Docker20 => compile_docker20(&text),
            Dialect::BuildKit => compile_buildkit(&text),
        };
        Ok(Some(Pattern {
            text,
            exclusion,
            depth,
            test,
        }))
    }

    /// The error matching would report, if the translated regex does not compile.
    pub(crate) fn broken(&self) -> Option<PatternError> {
        match &self.test {
            Test::Broken(_) => self.matches("").err(),
            _ => None,
        }
    }

    /// Tests the whole of `path` (a cleaned, `/`-separated relative path).
    pub(crate) fn matches(&self, path: &str) -> Result<bool, PatternError> {
        Ok(match &self.test {
            Test::Exact(s) => path == s,
            Test::Prefix(p) => path.starts_with(p.as_str()),
            Test::Suffix(s) => {
                path.ends_with(s.as_str()) || (s.starts_with('/') && path == &s[1..])
            }
            Test::Regex(re) => re.is_match(path),
            Test::Broken(reason) => {
                return Err(PatternError {
                    pattern: self.text.clone(),
                    reason: format!("not a valid regular expression once translated: {reason}"),
                })
            }
        })
    }
}

/// Checks the syntax the way Go's `filepath.Match(pattern, ".")` does: every
/// character class must be well formed and a `\` must escape something.
fn check_glob_syntax(pattern: &str) -> Result<(), PatternError> {
    let bad = |why: &str| Err(PatternError::new(format!("syntax error in pattern: {why}")));
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if i + 1 >= chars.len() {
                    return bad("trailing `\\` escapes nothing");
                }
                i += 2;
            }
            '[' => {
                i += 1;
                if chars.get(i) == Some(&'^') {
                    i += 1;
                }
                let mut ranges = 0;
                loop {
                    if chars.get(i) == Some(&']') && ranges > 0 {
                        i += 1;
                        break;
                    }
                    i = class_char(&chars, i)?;
                    if chars[i] == '-' {
                        i = class_char(&chars, i + 1)?;
                    }
                    ranges += 1;
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Go's `getEsc`: one (possibly escaped) character of a class; the class must
/// continue after it. Returns the index after the character.
fn class_char(chars: &[char], mut i: usize) -> Result<usize, PatternError> {
    let bad = || PatternError::new("syntax error in pattern: malformed `[...]` class");
    match chars.get(i) {
        None | Some('-') | Some(']') => return Err(bad()),
        Some('\\') => {
            i += 1;
            if i >= chars.len() {
                return Err(bad());
            }
        }
        Some(_) => {}
    }
    i += 1;
    if i >= chars.len() {
        return Err(bad());
    }
    Ok(i)
}

/// Docker 20.10's translation (moby `pkg/fileutils` of that release): only `.`
/// and `$` are escaped, everything else reaches the regex engine verbatim.
fn compile_docker20(text: &str) -> Test {
    const META: &[char] = &['*', '?', '[', ']', '\\', '+', '(', ')', '{', '}', '|', '^'];
    if !text.contains(META) {
        // The regex would be `^text$` with `.`/`$` escaped: a plain comparison.
        return Test::Exact(text.to_string());
    }
    let mut re = String::from("^");
    let mut it = text.chars().peekable();
    while let Some(ch) = it.next() {
        match ch {
            '*' if it.peek() == Some(&'*') => {
                it.next();
                if it.peek() == Some(&'/') {
                    it.next();
                }
                if it.peek().is_none() {
                    re.push_str(".*");
                } else {
                    re.push_str("(.*/)?");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '.' | '$' => {
                re.push('\\');
                re.push(ch);
            }
            '\\' => match it.next() {
                Some(next) => {
                    re.push('\\');
                    re.push(next);
                }
                None => re.push('\\'),
            },
            other => re.push(other),
        }
    }
    re.push('$');
    compile_go_regex(&re)
}

/// Current BuildKit's translation (moby/patternmatcher): regex-only characters
/// are escaped, and literal, `prefix/**` and `**/suffix` patterns skip the regex.
fn compile_buildkit(text: &str) -> Test {
    #[derive(PartialEq)]
    enum Kind {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let mut kind = Kind::Exact;
    let mut re = String::from("^");
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut index = 0;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        match ch {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i >= chars.len() {
                    if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        re.push_str(".*");
                        kind = Kind::Regex;
                    }
                } else {
                    re.push_str("(.*/)?");
                    kind = Kind::Regex;
                }
                if index == 0 {
                    kind = Kind::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                kind = Kind::Regex;
            }
            '?' => {
                re.push_str("[^/]");
                kind = Kind::Regex;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                re.push('\\');
                re.push(ch);
            }
            '\\' => {
                if i < chars.len() {
                    re.push('\\');
                    re.push(chars[i]);
                    i += 1;
                    kind = Kind::Regex;
                } else {
                    re.push('\\');
                }
            }
            '[' | ']' => {
                re.push(ch);
                kind = Kind::Regex;
            }
            other => re.push(other),
        }
        index += 1;
    }
    match kind {
        Kind::Exact => Test::Exact(text.to_string()),
        Kind::Prefix => Test::Prefix(text[..text.len() - 2].to_string()),
        Kind::Suffix => Test::Suffix(text[2..].to_string()),
        Kind::Regex => {
            re.push('$');
            compile_go_regex(&re)
        }
    }
}

/// Compiles Go regexp (RE2) text with the `regex` crate, rewriting the few
/// constructs whose meaning differs between the two engines.
fn compile_go_regex(go: &str) -> Test {
    let rust = translate_go_regex(go);
    match regex::Regex::new(&rust) {
        Ok(re) => Test::Regex(re),
        Err(e) => Test::Broken(e.to_string()),
    }
}

/// Rewrites RE2 syntax into `regex` crate syntax with the same meaning:
/// `[` inside a class is literal in RE2 but opens a nested class here; `&&`,
/// `--` and `~~` are set operations here; a `{` that does not start a valid
/// repetition is literal in RE2; `\d`, `\w`, `\s` are ASCII-only in RE2.
fn translate_go_regex(go: &str) -> String {
    let chars: Vec<char> = go.chars().collect();
    let mut out = String::with_capacity(go.len() + 8);
    let mut i = 0;
    let mut in_class = false;
    while i < chars.len() {
        i += if chars[i] == '\\' && i + 1 < chars.len() {
            translate_escape(chars[i + 1], in_class, &mut out)
        } else if in_class {
            translate_in_class(&chars[i..], &mut in_class, &mut out)
        } else {
            translate_outside_class(&chars[i..], &mut in_class, &mut out)
        };
    }
    out
}

/// A backslash and `next`: the Perl classes become their ASCII-only RE2 meaning; others stay. Consumes 2.
fn translate_escape(next: char, in_class: bool, out: &mut String) -> usize {
    let ascii = match next {
        'd' => Some(if in_class { "0-9" } else { "[0-9]" }),
        'D' if !in_class => Some("[^0-9]"),
        'w' => Some(if in_class {
            "0-9A-Za-z_"
        } else {
            "[0-9A-Za-z_]"
        }),
        'W' if !in_class => Some("[^0-9A-Za-z_]"),
        's' => Some(if in_class {
            "\\t\\n\\f\\r "
        } else {
            "[\\t\\n\\f\\r ]"
        }),
        'S' if !in_class => Some("[^\\t\\n\\f\\r ]"),
        _ => None,
    };
    match ascii {
        Some(s) => out.push_str(s),
        None => {
            out.push('\\');
            out.push(next);
        }
    }
    2
}

/// The character at `chars[0]` inside a class; returns how many characters it consumed.
fn translate_in_class(chars: &[char], in_class: &mut bool, out: &mut String) -> usize {
    match chars[0] {
        ']' => {
            *in_class = false;
            out.push(']');
        }
        '[' => {
            if let Some(len) = posix_class_len(chars) {
                out.extend(&chars[..len]);
                return len;
            }
            out.push_str("\\[");
        }
        ch @ ('&' | '~') => {
            out.push('\\');
            out.push(ch);
        }
        '-' if chars.get(1) == Some(&'-') => out.push_str("\\-"),
        other => out.push(other),
    }
    1
}

/// The character at `chars[0]` outside any class; returns how many characters it consumed.
fn translate_outside_class(chars: &[char], in_class: &mut bool, out: &mut String) -> usize {
    match chars[0] {
        '[' => {
            *in_class = true;
            out.push('[');
            let mut i = 1;
            if chars.get(i) == Some(&'^') {
                out.push('^');
                i += 1;
            }
            if chars.get(i) == Some(&']') {
                // A `]` first in a class is a literal in both engines' eyes
                // only if escaped here.
                out.push_str("\\]");
                i += 1;
            }
            return i;
        }
        '{' => match repetition_len(chars) {
            Some(len) => {
                out.extend(&chars[..len]);
                return len;
            }
            None => out.push_str("\\{"),
        },
        '}' => out.push_str("\\}"),
        ']' => out.push_str("\\]"),
        other => out.push(other),
    }
    1
}

/// Length of a `[:name:]` POSIX class at the start of `chars`, if there is one.
fn posix_class_len(chars: &[char]) -> Option<usize> {
    if chars.get(1) != Some(&':') {
        return None;
    }
    let mut j = 2;
    while j < chars.len() && chars[j].is_ascii_alphabetic() {
        j += 1;
    }
    if j > 2 && chars.get(j) == Some(&':') && chars.get(j + 1) == Some(&']') {
        Some(j + 2)
    } else {
        None
    }
}

/// Length of a valid RE2 repetition `{n}`, `{n,}` or `{n,m}` at the start of `chars`.
fn repetition_len(chars: &[char]) -> Option<usize> {
    let mut j = 1;
    let digits = |j: &mut usize| {
        let start = *j;
        while *j < chars.len() && chars[*j].is_ascii_digit() {
            *j += 1;
        }
        *j > start
    };
    if !digits(&mut j) {
        return None;
    }
    if chars.get(j) == Some(&',') {
        j += 1;
        digits(&mut j);
    }
    if chars.get(j) == Some(&'}') {
        Some(j + 1)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(line: &str, dialect: Dialect) -> Pattern {
        Pattern::parse(line, dialect).unwrap().unwrap()
    }

    fn m(p: &str, path: &str, dialect: Dialect) -> bool {
        pat(p, dialect).matches(path).unwrap()
    }

    const BOTH: [Dialect; 2] = [Dialect::Docker20, Dialect::BuildKit];

    #[test]
    fn star_matches_within_one_component() {
        for d in BOTH {
            assert!(m("*", "a", d));
            assert!(!m("*", "a/b", d));
            assert!(m("*.txt", "notes.txt", d));
            assert!(!m("*.txt", "dir/notes.txt", d));
            assert!(m("a/*", "a/b", d));
            assert!(!m("a/*", "a/b/c", d));
            assert!(m("*/b", "a/b", d));
            assert!(m("a*c", "abbc", d));
        }
    }

    #[test]
    fn question_mark_is_one_non_slash_char() {
        for d in BOTH {
            assert!(m("?", "a", d));
            assert!(!m("?", "ab", d));
            assert!(m("a?c", "abc", d));
            assert!(!m("a?c", "a/c", d));
            assert!(m("?", "é", d));
        }
    }

    #[test]
    fn classes() {
        for d in BOTH {
            assert!(m("[ab]", "a", d));
            assert!(!m("[ab]", "c", d));
            assert!(m("[a-c]x", "bx", d));
            assert!(m("[^a]", "b", d));
            assert!(!m("[^a]", "a", d));
            // `*` inside a class is still translated, as Docker does: `[[^/]*]`.
            assert!(!m("[*]", "*", d));
            assert!(m("[*]", "]", d));
            assert!(m("x[\\]]", "x]", d));
        }
    }

    #[test]
    fn double_star_any_depth() {
        for d in BOTH {
            assert!(m("**", "a", d));
            assert!(m("**", "a/b/c", d));
            assert!(m("**/b", "b", d));
            assert!(m("**/b", "a/b", d));
            assert!(m("**/b", "a/x/b", d));
            assert!(!m("**/b", "a/bb", d));
            assert!(m("a/**", "a/b", d));
            assert!(m("a/**", "a/b/c", d));
            assert!(m("a/**/c", "a/c", d));
            assert!(m("a/**/c", "a/b/x/c", d));
            assert!(!m("a/**/c", "a/b/x/cd", d));
            assert!(m("**/*.go", "x/y.go", d));
            assert!(m("**.go", "x/.go", d));
        }
        // `**` glued to a name: a suffix test in BuildKit, `(.*/)?` in Docker 20.10.
        assert!(m("**.go", "x/y.go", Dialect::BuildKit));
        assert!(!m("**.go", "x/y.go", Dialect::Docker20));
    }

    #[test]
    fn double_star_prefix_edge_differs_between_dialects() {
        // BuildKit matches `a/**` as a plain prefix `a/`, Docker 20.10 as `^a/.*$`.
        assert!(m("a/**", "a/", Dialect::BuildKit));
        assert!(!m("a/**", "a", Dialect::BuildKit));
        assert!(!m("a/**", "a", Dialect::Docker20));
    }

    #[test]
    fn cleaning_and_exceptions() {
        for d in BOTH {
            let p = pat("  ./a/../b/  ", d);
            assert_eq!(p.text, "b");
            assert!(!p.exclusion);
            let p = pat("!x/", d);
            assert!(p.exclusion);
            assert_eq!(p.text, "x");
            assert_eq!(pat("a/b/c", d).depth, 3);
            assert!(Pattern::parse("   ", d).unwrap().is_none());
            assert!(Pattern::parse("!", d).is_err());
        }
    }

    #[test]
    fn dots_are_literal() {
        for d in BOTH {
            assert!(m("a.txt", "a.txt", d));
            assert!(!m("a.txt", "abtxt", d));
            assert!(m("*.t$t", "x.t$t", d));
        }
    }

    #[test]
    fn regex_characters_follow_each_dialect() {
        // Docker 20.10 passes `+`, `(`, `{`... to the regex engine verbatim.
        assert!(m("a+b", "aab", Dialect::Docker20));
        assert!(!m("a+b", "a+b", Dialect::Docker20));
        assert!(m("x(y)", "xy", Dialect::Docker20));
        assert!(m("p{1}", "p", Dialect::Docker20));
        // Current BuildKit escapes them.
        assert!(m("a+b", "a+b", Dialect::BuildKit));
        assert!(!m("a+b", "aab", Dialect::BuildKit));
        assert!(m("x(y)*", "x(y)z", Dialect::BuildKit));
        assert!(m("p{1}", "p{1}", Dialect::BuildKit));
    }

    #[test]
    fn backslash_escapes() {
        for d in BOTH {
            assert!(m("a\\*", "a*", d));
            assert!(!m("a\\*", "ab", d));
            assert!(m("\\[x\\]", "[x]", d));
        }
    }

    #[test]
    fn syntax_errors_like_go_filepath_match() {
        for d in BOTH {
            for bad in ["[", "z[", "[]", "[a-", "[a-]", "[^]", "a\\", "[\\", "x[a*"] {
                assert!(
                    Pattern::parse(bad, d).is_err(),
                    "{bad:?} should be rejected"
                );
            }
            for good in ["[*]", "[\\]]", "a]b", "[a-c]", "[^a]", "*"] {
                assert!(
                    Pattern::parse(good, d).is_ok(),
                    "{good:?} should be accepted"
                );
            }
        }
    }

    #[test]
    fn odd_regex_text_is_translated_not_rejected() {
        assert!(m("a{", "a{", Dialect::Docker20));
        assert!(m("a}*", "a}x", Dialect::Docker20));
        assert!(m("[[]", "[", Dialect::Docker20));
        assert!(m("[&]", "&", Dialect::Docker20));
        assert!(m("[[:digit:]]", "7", Dialect::Docker20));
    }

    #[test]
    fn translation_keeps_re2_meaning() {
        assert_eq!(translate_go_regex("^[[^/]*]$"), "^[\\[^/]*\\]$");
        assert_eq!(translate_go_regex("^a{2}$"), "^a{2}$");
        assert_eq!(translate_go_regex("^a{x$"), "^a\\{x$");
        assert_eq!(translate_go_regex("^\\d$"), "^[0-9]$");
    }
}

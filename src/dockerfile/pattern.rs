//! Shell patterns of `${V#p}`, `${V%p}` and `${V/p/r}`: `*` and `?` wildcards, turned into
//! a regular expression the way the frontend does it (no bracket expressions).

use regex::Regex;

use super::error::Msg;

/// Converts a shell pattern to a regex; `greedy` picks `.*` over `.*?`, `anchored` adds `^`.
pub(crate) fn to_regex(pattern: &str, greedy: bool, anchored: bool) -> Msg<Regex> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 4);
    if anchored {
        out.push('^');
    }
    let star = if greedy { ".*" } else { ".*?" };
    let mut i = 0;
    while i < chars.len() {
        let mut tok = chars[i];
        i += 1;
        match tok {
            '*' => {
                out.push_str(star);
                continue;
            }
            '?' => {
                out.push('.');
                continue;
            }
            '\\' => {
                // `}` and `/` are escaped only to get them past `${}` parsing.
                if matches!(chars.get(i), Some('}') | Some('/')) {
                    continue;
                }
                out.push('\\');
                match chars.get(i) {
                    Some(&c @ ('*' | '?' | '\\')) => {
                        tok = c;
                        i += 1;
                    }
                    Some(&c) => return Err(format!("invalid escape '\\{c}'")),
                    None => return Err("invalid escape '\\' at the end of the pattern".into()),
                }
            }
            '[' | ']' | '{' | '}' | '.' | '+' | '(' | ')' | '|' | '^' | '$' => out.push('\\'),
            _ => {}
        }
        out.push(tok);
    }
    Regex::new(&out).map_err(|e| e.to_string())
}

/// `${V#p}` / `${V##p}`: drops the shortest (longest) prefix matching `pattern`.
pub(crate) fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Msg<String> {
    let re = to_regex(pattern, greedy, true)
        .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
    Ok(match re.find(value) {
        Some(m) => value[m.end()..].to_string(),
        None => value.to_string(),
    })
}

/// `${V%p}` / `${V%%p}`: drops the shortest (longest) suffix matching `pattern`, by
/// reversing both (a regex cannot look for the shortest rightmost match).
pub(crate) fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Msg<String> {
    let reversed = reverse_pattern(pattern);
    let value: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&reversed, &value, greedy)?;
    Ok(trimmed.chars().rev().collect())
}

/// Reverses a pattern but keeps each `\x` escape pair in order (`a\*c` becomes `c\*a`).
fn reverse_pattern(pattern: &str) -> String {
    let p: Vec<char> = pattern.chars().collect();
    let n = p.len();
    let mut out = vec![' '; n];
    let mut i = 0;
    while i < n {
        let tok = p[i];
        let out_idx = n - 1 - i;
        if tok == '\\' && i != n - 1 {
            out[out_idx - 1] = tok;
            out[out_idx] = p[i + 1];
            i += 2;
        } else {
            out[out_idx] = tok;
            i += 1;
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_suffix_trimming() {
        assert_eq!(trim_prefix("a*", "abcabc", false).unwrap(), "bcabc");
        assert_eq!(trim_prefix("a*", "abcabc", true).unwrap(), "");
        assert_eq!(trim_prefix("*c", "abcabc", false).unwrap(), "abc");
        assert_eq!(trim_suffix("c*", "abcabc", false).unwrap(), "abcab");
        assert_eq!(trim_suffix("b*", "abcabc", true).unwrap(), "a");
        assert_eq!(trim_suffix("*.tar.gz", "x.tar.gz", false).unwrap(), "x");
        assert_eq!(trim_suffix("*.tar.gz", "x.tar.gz", true).unwrap(), "");
        assert_eq!(trim_suffix(".tar.gz", "x.tar.gz", false).unwrap(), "x");
        assert_eq!(trim_prefix("x", "abc", false).unwrap(), "abc");
    }

    #[test]
    fn escapes_in_patterns() {
        assert_eq!(trim_prefix("a\\*", "a*b", false).unwrap(), "b");
        assert!(trim_prefix("a\\b", "ab", false).is_err());
        assert_eq!(reverse_pattern("a\\*c"), "c\\*a");
        assert_eq!(reverse_pattern(""), "");
    }
}

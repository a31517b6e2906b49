//! Physical lines to instructions: the byte-order mark, parser directives (`# escape=`),
//! comments, line continuations (comments and blank lines inside them), and heredoc bodies.

use super::error::{DockerfileError, Msg};
use super::nodes::{new_node, Node};
use super::shell::{self, Lex, NoEnv};
use super::text::is_space;

/// A heredoc attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Heredoc {
    /// Terminator word (quotes removed).
    pub name: String,
    /// Whether the body is subject to expansion (the terminator was not quoted).
    pub expand: bool,
    /// `<<-`: leading tabs are stripped.
    pub chomp: bool,
    /// The body, lines with their endings.
    pub content: String,
}

/// The instructions of a file and its escape character.
#[derive(Debug)]
pub(crate) struct Parsed {
    /// Instructions in file order.
    pub nodes: Vec<Node>,
    /// `\` or the `# escape=` directive's character.
    pub escape: char,
}

/// The bufio.Scanner limit the frontend reads lines with.
const MAX_LINE: usize = 64 * 1024;

/// Parses a Dockerfile's text into instructions, or fails where BuildKit's parser fails.
pub(crate) fn parse(text: &str) -> Result<Parsed, DockerfileError> {
    let (lines, too_long) = split_lines(text);
    let mut d = Directives::new();
    let mut nodes = Vec::new();
    let mut idx = 0;
    let mut current = 0usize;
    while idx < lines.len() {
        let mut raw = lines[idx];
        idx += 1;
        if current == 0 {
            raw = raw.strip_prefix('\u{feff}').unwrap_or(raw);
        }
        let first = process_line(&mut d, raw, true).map_err(|m| err(current + 1, m))?;
        current += 1;
        let start = current;
        let (head, mut eol) = trim_continuation(first, d.escape);
        if eol && head.is_empty() {
            continue;
        }
        let mut line = head;
        while !eol && idx < lines.len() {
            let raw_next = lines[idx];
            idx += 1;
            let next = process_line(&mut d, raw_next, false).map_err(|m| err(current + 1, m))?;
            current += 1;
            if is_comment(raw_next) || is_empty_continuation(&next) {
                continue;
            }
            let (part, end) = trim_continuation(next, d.escape);
            line.push_str(&part);
            eol = end;
        }
        let mut node = new_node(&line, d.escape).map_err(|m| err(start, m))?;
        if node.can_contain_heredoc() && line.contains("<<") {
            let docs = heredocs_in_line(&line).map_err(|m| err(start, m))?;
            for h in docs {
                let h = read_body(h, &lines, &mut idx, &mut current).map_err(|m| err(start, m))?;
                node.heredocs.push(h);
            }
        }
        node.start_line = start;
        node.end_line = current;
        node.first_line = lines[start - 1].trim().to_string();
        nodes.push(node);
    }
    if nodes.is_empty() {
        return Err(DockerfileError::new(
            0,
            "file with no instructions; a Dockerfile needs at least a FROM line",
        ));
    }
    if too_long {
        return Err(err(
            lines.len() + 1,
            format!(
                "dockerfile line greater than max allowed size of {}; split the line with \
                 line continuations",
                MAX_LINE - 1
            ),
        ));
    }
    Ok(Parsed {
        nodes,
        escape: d.escape,
    })
}

/// Reads a heredoc's body up to its terminator line, advancing the line cursor.
fn read_body(mut h: Heredoc, lines: &[&str], idx: &mut usize, current: &mut usize) -> Msg<Heredoc> {
    while *idx < lines.len() {
        let body = lines[*idx];
        *idx += 1;
        *current += 1;
        let mut candidate = body.trim_end_matches(['\r', '\n']);
        if h.chomp {
            candidate = candidate.trim_start_matches('\t');
        }
        if candidate == h.name {
            return Ok(h);
        }
        h.content.push_str(body);
    }
    Err(format!(
        "unterminated heredoc: no line reads {:?} after the instruction; end the heredoc with that line",
        h.name
    ))
}

fn err(line: usize, message: String) -> DockerfileError {
    DockerfileError::new(line, message)
}

/// Lines with their endings, stopping (like bufio.Scanner) at the first line that is too long.
fn split_lines(text: &str) -> (Vec<&str>, bool) {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (line, content_len) = match rest.find('\n') {
            Some(i) => (&rest[..=i], i),
            None => (rest, rest.len()),
        };
        if content_len >= MAX_LINE {
            return (out, true);
        }
        out.push(line);
        rest = &rest[line.len()..];
    }
    (out, false)
}

/// Parser directive state: only lines at the very top can be directives.
struct Directives {
    escape: char,
    done: bool,
    seen: Vec<String>,
}

impl Directives {
    fn new() -> Directives {
        Directives {
            escape: '\\',
            done: false,
            seen: Vec::new(),
        }
    }

    /// Looks at one line (already trimmed on the left for first lines).
    fn check(&mut self, line: &str) -> Msg<bool> {
        if self.done {
            return Ok(false);
        }
        let Some((key, value)) = line
            .strip_prefix('#')
            .and_then(|l| directive(l.trim_start_matches(is_space)))
        else {
            self.done = true;
            return Ok(false);
        };
        let key = key.to_ascii_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            self.done = true;
            return Ok(false);
        }
        if self.seen.contains(&key) {
            return Err(format!(
                "only one {key} parser directive can be used; remove the repeated one"
            ));
        }
        self.seen.push(key.clone());
        if key == "escape" {
            match value {
                "`" => self.escape = '`',
                "\\" => self.escape = '\\',
                other => {
                    return Err(format!(
                        "invalid escape token '{other}' does not match ` or \\; use `# escape=\\` or `# escape=``"
                    ))
                }
            }
        }
        Ok(true)
    }
}

/// Go's `\s`.
fn is_re_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{0c}' | '\r' | ' ')
}

/// Matches `^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` and returns (key, value).
fn directive(s: &str) -> Option<(&str, &str)> {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, c)) if c.is_ascii_alphabetic() => {}
        _ => return None,
    }
    let key_end = s
        .char_indices()
        .find(|(_, c)| !c.is_ascii_alphanumeric())
        .map_or(s.len(), |(i, _)| i);
    let after_key = s[key_end..].trim_start_matches(is_re_space);
    let rest = after_key.strip_prefix('=')?;
    if rest.is_empty() {
        return None;
    }
    let trimmed = rest.trim_start_matches(is_re_space);
    let value = if trimmed.is_empty() {
        // All spaces: the lazy value still takes one character (the last).
        &rest[rest.len() - rest.chars().last()?.len_utf8()..]
    } else {
        trimmed.trim_end_matches(is_re_space)
    };
    Some((&s[..key_end], value))
}

/// Strips the line ending (and leading space for first lines), feeds the directive parser,
/// and drops a comment line to nothing.
fn process_line(d: &mut Directives, raw: &str, strip_left: bool) -> Msg<String> {
    let mut token = raw.trim_end_matches(['\r', '\n']);
    if strip_left {
        token = token.trim_start_matches(is_space);
    }
    d.check(token)?;
    Ok(if is_comment(token) {
        String::new()
    } else {
        token.to_string()
    })
}

fn is_comment(line: &str) -> bool {
    line.trim_start_matches(is_space).starts_with('#')
}

fn is_empty_continuation(line: &str) -> bool {
    line.trim_end_matches(['\r', '\n'])
        .trim_start_matches(is_space)
        .is_empty()
}

/// `([^E])E[ \t]*$|^E[ \t]*$` with E the escape: removes a trailing continuation.
/// Returns the line and whether it ends the instruction.
fn trim_continuation(line: String, escape: char) -> (String, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    let Some(before) = t.strip_suffix(escape) else {
        return (line, true);
    };
    match before.chars().last() {
        None => (String::new(), false),
        Some(c) if c != escape => (before.to_string(), false),
        Some(_) => (line, true),
    }
}

/// The heredocs a RUN/COPY/ADD line opens, in order.
fn heredocs_in_line(line: &str) -> Msg<Vec<Heredoc>> {
    let lex = Lex {
        escape: '\\',
        raw_quotes: true,
        raw_escapes: true,
        skip_unset: true,
    };
    // The frontend ignores lexing errors here: such a line simply has no heredocs.
    let words = shell::process(&lex, line, &NoEnv)
        .map(|o| o.words)
        .unwrap_or_default();
    let mut docs = Vec::new();
    for w in words {
        if let Some(h) = parse_heredoc(&w)? {
            docs.push(h);
        }
    }
    Ok(docs)
}

/// `^(\d*)<<(-?)\s*([^<]*)$` plus the one-word check: the heredoc a word opens, if any.
pub(crate) fn parse_heredoc(src: &str) -> Msg<Option<Heredoc>> {
    let digits = src.len() - src.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let Some(after) = src[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, after) = match after.strip_prefix('-') {
        Some(a) => (true, a),
        None => (false, after),
    };
    let rest = after.trim_start_matches(is_re_space);
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let mut lex = Lex {
        escape: '\\',
        raw_quotes: false,
        raw_escapes: false,
        skip_unset: true,
    };
    let words = shell::process(&lex, rest, &NoEnv)?.words;
    if words.len() != 1 {
        return Ok(None);
    }
    lex.raw_quotes = true;
    let raw = shell::process(&lex, rest, &NoEnv)?.words;
    if raw.len() != words.len() {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
    }
    let quotes = |s: &str| s.matches(['\'', '"']).count();
    Ok(Some(Heredoc {
        expand: quotes(&words[0]) == quotes(&raw[0]),
        name: words[0].clone(),
        chomp,
        content: String::new(),
    }))
}

/// Convenience for callers that only need to know whether a word is a heredoc.
pub(crate) fn is_heredoc(src: &str) -> bool {
    matches!(parse_heredoc(src), Ok(Some(_)))
}

#[cfg(test)]
#[path = "lexer_tests.rs"]
mod tests;

//! One logical line to a node: the instruction word, its `--flags`, and its arguments split
//! the way that instruction splits them (JSON array, whitespace, words with quotes kept,
//! `key=value` pairs, the rest of the line as one string).

use super::error::Msg;
use super::lexer::Heredoc;
use super::text::{is_space, is_space_byte, split_all_sep, split_once_sep};

/// One instruction as the parser sees it, before typing.
#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    /// The instruction word as written (`copy`, `COPY`, ...).
    pub cmd: String,
    /// `--flag[=value]` words before the arguments.
    pub flags: Vec<String>,
    /// Arguments; for ONBUILD, the trigger's instruction word followed by its arguments.
    pub args: Vec<String>,
    /// The arguments were a JSON array.
    pub json: bool,
    /// Heredoc bodies opened on this line.
    pub heredocs: Vec<Heredoc>,
    /// ONBUILD's trigger, parsed as a line of its own.
    pub sub: Option<Box<Node>>,
    /// 1-based first line.
    pub start_line: usize,
    /// 1-based last line (heredoc bodies included).
    pub end_line: usize,
    /// The first physical line, trimmed, for messages.
    pub first_line: String,
}

impl Node {
    /// RUN, COPY and ADD in shell form (also as ONBUILD triggers) may open heredocs.
    pub(crate) fn can_contain_heredoc(&self) -> bool {
        let n = match (&self.sub, self.cmd.eq_ignore_ascii_case("onbuild")) {
            (Some(sub), true) => sub,
            _ => self,
        };
        let c = n.cmd.to_ascii_lowercase();
        matches!(c.as_str(), "add" | "copy" | "run") && !n.json
    }
}

/// Parses one logical line.
pub(crate) fn new_node(line: &str, escape: char) -> Msg<Node> {
    let (cmd, flags, rest) = split_command(line, escape);
    let lower = cmd.to_ascii_lowercase();
    let mut node = Node {
        cmd: cmd.to_string(),
        flags,
        ..Node::default()
    };
    match lower.as_str() {
        "add" | "copy" | "volume" => set_list(&mut node, maybe_json_list(&rest)?),
        "arg" => node.args = parse_words(&rest, escape),
        "cmd" | "entrypoint" | "run" | "shell" => set_list(&mut node, maybe_json(&rest)?),
        "env" | "label" => node.args = name_val(&rest, &cmd.to_ascii_uppercase(), escape)?,
        "expose" | "from" => node.args = whitespace_list(&rest),
        "healthcheck" => set_list(&mut node, health(&rest)?),
        "maintainer" | "stopsignal" | "user" | "workdir" if !rest.is_empty() => {
            node.args = vec![rest];
        }
        "onbuild" if !rest.is_empty() => {
            let sub = new_node(&rest, escape)?;
            node.args.push(sub.cmd.clone());
            node.args.extend(sub.args.iter().cloned());
            node.sub = Some(Box::new(sub));
        }
        _ => {}
    }
    Ok(node)
}

fn set_list(node: &mut Node, (args, json): (Vec<String>, bool)) {
    node.args = args;
    node.json = json;
}

/// Splits off the instruction word and the leading `--flags`.
fn split_command(line: &str, escape: char) -> (String, Vec<String>, String) {
    let (cmd, rest) = split_once_sep(line.trim());
    match rest {
        None => (cmd.to_string(), Vec::new(), String::new()),
        Some(rest) => {
            let (args, flags) = extract_flags(rest, escape);
            (cmd.to_string(), flags, args.trim().to_string())
        }
    }
}

/// The frontend's `extractBuilderFlags`. It walks bytes, not characters, so a byte of a
/// multi-byte character is taken as a Latin-1 character (and 0x85/0xA0 as spaces); we do
/// the same to read the same flag values.
fn extract_flags(line: &str, escape: char) -> (String, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let b = line.as_bytes();
    let esc = u8::try_from(escape).unwrap_or(b'\\');
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = 0u8;
    let mut blank_ok = false;
    let mut pos = 0usize;
    let rest_from = |p: usize| String::from_utf8_lossy(&b[p..]).into_owned();
    while pos <= b.len() {
        let ch = if pos < b.len() { b[pos] } else { 0 };
        if phase == Phase::Spaces {
            if pos == b.len() {
                break;
            }
            if is_space_byte(ch) {
                pos += 1;
                continue;
            }
            if ch != b'-' || pos + 1 == b.len() || b[pos + 1] != b'-' {
                return (rest_from(pos), words);
            }
            phase = Phase::Word;
        }
        if pos == b.len() {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if is_space_byte(ch) {
                phase = Phase::Spaces;
                if word == "--" {
                    return (rest_from(pos), words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == b'\'' || ch == b'"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
        } else if ch == quote {
            phase = Phase::Word;
            pos += 1;
            continue;
        }
        let mut c = ch;
        if c == esc {
            if pos + 1 == b.len() {
                if phase == Phase::Quote {
                    phase = Phase::Word;
                }
                pos += 1;
                continue;
            }
            pos += 1;
            c = b[pos];
        }
        word.push(char::from(c));
        pos += 1;
    }
    (String::new(), words)
}

/// The frontend's `parseWords`: splits on spaces outside quotes, keeping quotes and escapes.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut in_word, mut in_quote, mut blank_ok) = (false, false, false);
    let mut quote = '\0';
    let mut pos = 0;
    while pos <= chars.len() {
        if pos == chars.len() {
            if (in_word || in_quote) && (blank_ok || !word.is_empty()) {
                words.push(std::mem::take(&mut word));
            }
            break;
        }
        let mut ch = chars[pos];
        if !in_word && !in_quote {
            if is_space(ch) {
                pos += 1;
                continue;
            }
            in_word = true;
        }
        if in_word {
            if is_space(ch) {
                in_word = false;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                in_word = false;
                in_quote = true;
            }
            if ch == escape {
                if pos + 1 == chars.len() {
                    pos += 1;
                    continue;
                }
                word.push(ch);
                pos += 1;
                ch = chars[pos];
            }
            word.push(ch);
            pos += 1;
            continue;
        }
        // In a quote (the opening quote was written above, on the previous character).
        if ch == quote {
            in_quote = false;
            in_word = true;
        } else if ch == escape && quote != '\'' {
            if pos + 1 == chars.len() {
                in_quote = false;
                in_word = true;
                pos += 1;
                continue;
            }
            word.push(ch);
            pos += 1;
            ch = chars[pos];
        }
        word.push(ch);
        pos += 1;
    }
    words
}

/// ENV and LABEL: `key value` (old form) or `k=v ...`; flattened as key, value, separator.
fn name_val(rest: &str, key: &str, escape: char) -> Msg<Vec<String>> {
    let words = parse_words(rest, escape);
    if words.is_empty() {
        return Ok(Vec::new());
    }
    if !words[0].contains('=') {
        return match split_once_sep(rest) {
            (k, Some(v)) => Ok(vec![k.to_string(), v.to_string(), String::new()]),
            (_, None) => Err(format!(
                "{key} must have two arguments; write {key} name=value"
            )),
        };
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
            ));
        };
        out.extend([k.to_string(), v.to_string(), "=".to_string()]);
    }
    Ok(out)
}

fn whitespace_list(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        Vec::new()
    } else {
        split_all_sep(rest)
    }
}

/// What `parseJSON` makes of the arguments.
enum Json {
    Strings(Vec<String>),
    NotJson,
}

const NOT_STRINGS: &str = "when using JSON array syntax, arrays must be comprised of strings only";

fn json(rest: &str) -> Msg<Json> {
    let t = rest.trim_start_matches(is_space);
    if !t.starts_with('[') {
        return Ok(Json::NotJson);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(t) else {
        return Ok(Json::NotJson);
    };
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        match v {
            serde_json::Value::String(s) => out.push(s),
            _ => return Err(format!("{NOT_STRINGS}; quote every element")),
        }
    }
    Ok(Json::Strings(out))
}

/// CMD, ENTRYPOINT, RUN, SHELL: a JSON array, or the rest of the line as one argument.
fn maybe_json(rest: &str) -> Msg<(Vec<String>, bool)> {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    Ok(match json(rest)? {
        Json::Strings(v) => (v, true),
        Json::NotJson => (vec![rest.to_string()], false),
    })
}

/// ADD, COPY, VOLUME: a JSON array, or whitespace-separated words.
fn maybe_json_list(rest: &str) -> Msg<(Vec<String>, bool)> {
    Ok(match json(rest)? {
        Json::Strings(v) => (v, true),
        Json::NotJson => (whitespace_list(rest), false),
    })
}

/// HEALTHCHECK: a type word, then a command like CMD's.
fn health(rest: &str) -> Msg<(Vec<String>, bool)> {
    let b = rest.as_bytes();
    let sep = b.iter().position(|&c| is_space_byte(c)).unwrap_or(b.len());
    if sep == 0 {
        return Ok((Vec::new(), false));
    }
    let next = b[sep..]
        .iter()
        .position(|&c| !is_space_byte(c))
        .map_or(b.len(), |i| sep + i);
    let typ = String::from_utf8_lossy(&b[..sep]).into_owned();
    let cmd = String::from_utf8_lossy(&b[next..]).into_owned();
    let (mut args, json) = maybe_json(&cmd)?;
    args.insert(0, typ);
    Ok((args, json))
}

#[cfg(test)]
#[path = "nodes_tests.rs"]
mod tests;

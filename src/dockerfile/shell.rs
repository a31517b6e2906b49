//! Word expansion as the frontend's shell lexer does it: quotes, escapes, `$V`, `${V}`,
//! `${V:-x}`, `${V-x}`, `${V:+x}`, `${V+x}`, `${V?x}`, `${V:?x}`, `${V#p}`, `${V##p}`,
//! `${V%p}`, `${V%%p}`, `${V/p/r}`, `${V//p/r}`, and splitting into words.
//!
//! Besides set and unset, a variable can be *unknown* (it may come from a base image's
//! ENV): the expansion then carries on to find syntax errors, and reports the unknown name
//! so the caller can give up on the result instead of guessing it.

use super::error::Msg;
use super::pattern;
use super::text::is_space;

/// What a variable holds in the scope of an expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Set, possibly to the empty string.
    Set(String),
    /// Known not to be set.
    Unset,
    /// Cannot be known here (e.g. the base image's ENV).
    Unknown,
}

/// A scope to expand in.
pub(crate) trait Env {
    /// The value of `name`.
    fn lookup(&self, name: &str) -> Lookup;
}

/// A scope where nothing is set.
pub(crate) struct NoEnv;

impl Env for NoEnv {
    fn lookup(&self, _: &str) -> Lookup {
        Lookup::Unset
    }
}

/// Lexer options (the frontend's `shell.Lex` fields).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lex {
    /// Escape character: `\` or the `# escape=` directive's.
    pub escape: char,
    /// Keep quote characters in the result.
    pub raw_quotes: bool,
    /// Keep escape characters in the result.
    pub raw_escapes: bool,
    /// Leave unset variables as written instead of expanding them to nothing.
    pub skip_unset: bool,
}

impl Lex {
    /// Plain expansion with `escape`.
    pub(crate) fn new(escape: char) -> Lex {
        Lex {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
        }
    }
}

/// The result of processing one word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The expanded text (spaces kept).
    pub result: String,
    /// The expanded text split into words.
    pub words: Vec<String>,
    /// Why the result cannot be trusted: the first unknown variable, if any.
    pub unknown: Option<String>,
}

/// Processes `word` in `env`; an error is what the frontend reports as "failed to process".
pub(crate) fn process(lex: &Lex, word: &str, env: &dyn Env) -> Msg<Outcome> {
    let mut sw = ShellWord {
        lex: *lex,
        chars: word.chars().collect(),
        pos: 0,
        env,
        raw_escapes: lex.raw_escapes,
        buf: String::new(),
        unknown: None,
    };
    let raw = sw.raw_escapes;
    match sw.stop_on(None, raw) {
        Ok((result, words)) => Ok(Outcome {
            result,
            words,
            unknown: sw.unknown,
        }),
        Err(e) => Err(format!("failed to process {word:?}: {e}")),
    }
}

/// Words being collected; the in-progress word lives in the shared `ShellWord::buf`, as in
/// the frontend (where a nested `${...}` resets it).
struct Words {
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, buf: &mut String, ch: char) {
        if is_space(ch) && self.in_word {
            if !buf.is_empty() {
                self.words.push(std::mem::take(buf));
                self.in_word = false;
            }
        } else if !is_space(ch) {
            self.add_raw_char(buf, ch);
        }
    }

    fn add_raw_char(&mut self, buf: &mut String, ch: char) {
        buf.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, buf: &mut String, s: &str) {
        for ch in s.chars() {
            self.add_char(buf, ch);
        }
    }

    fn add_raw_string(&mut self, buf: &mut String, s: &str) {
        buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self, buf: &mut String) -> Vec<String> {
        if !buf.is_empty() {
            self.words.push(std::mem::take(buf));
            self.in_word = false;
        }
        self.words
    }
}

struct ShellWord<'e> {
    lex: Lex,
    chars: Vec<char>,
    pos: usize,
    env: &'e dyn Env,
    raw_escapes: bool,
    buf: String,
    unknown: Option<String>,
}

/// How a variable looked up during processing turned out.
enum Got {
    Set(String),
    Unset,
    Unknown,
}

impl ShellWord<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn mark_unknown(&mut self, why: String) {
        if self.unknown.is_none() {
            self.unknown = Some(why);
        }
    }

    fn get(&mut self, name: &str) -> Got {
        match self.env.lookup(name) {
            Lookup::Set(v) => Got::Set(v),
            Lookup::Unset => Got::Unset,
            Lookup::Unknown => {
                self.mark_unknown(name.to_string());
                Got::Unknown
            }
        }
    }

    /// Processes until `stop` (consumed) or the end; returns the text and its words.
    fn stop_on(&mut self, stop: Option<char>, raw_escapes: bool) -> Msg<(String, Vec<String>)> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let r = self.stop_on_inner(stop);
        self.raw_escapes = saved;
        r
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> Msg<(String, Vec<String>)> {
        let mut result = String::new();
        self.buf.clear();
        let mut words = Words {
            words: Vec::new(),
            in_word: false,
        };
        while let Some(ch) = self.peek() {
            if stop == Some(ch) {
                self.next();
                let mut buf = std::mem::take(&mut self.buf);
                let w = words.finish(&mut buf);
                self.buf = buf;
                return Ok((result, w));
            }
            let special = match ch {
                '$' => Some(self.dollar()?),
                '<' => Some(self.possible_heredoc()),
                '\'' => Some(self.single_quote()?),
                '"' => Some(self.double_quote()?),
                _ => None,
            };
            let mut buf = std::mem::take(&mut self.buf);
            if let Some(tmp) = special {
                result.push_str(&tmp);
                if ch == '$' {
                    words.add_string(&mut buf, &tmp);
                } else {
                    words.add_raw_string(&mut buf, &tmp);
                }
                self.buf = buf;
                continue;
            }
            let mut ch = self.next().unwrap_or(ch);
            if ch == self.lex.escape {
                if self.raw_escapes {
                    words.add_raw_char(&mut buf, ch);
                    result.push(ch);
                }
                match self.next() {
                    None => {
                        self.buf = buf;
                        break;
                    }
                    Some(c) => ch = c,
                }
                words.add_raw_char(&mut buf, ch);
            } else {
                words.add_char(&mut buf, ch);
            }
            result.push(ch);
            self.buf = buf;
        }
        if let Some(s) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {s}"
            ));
        }
        let mut buf = std::mem::take(&mut self.buf);
        let w = words.finish(&mut buf);
        self.buf = buf;
        Ok((result, w))
    }

    fn single_quote(&mut self) -> Msg<String> {
        let mut result = String::new();
        let q = self.next();
        if self.lex.raw_quotes {
            result.extend(q);
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    )
                }
                Some('\'') => {
                    if self.lex.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Msg<String> {
        let mut result = String::new();
        let q = self.next();
        if self.lex.raw_quotes {
            result.extend(q);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    )
                }
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    result.push_str(&v);
                }
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            // A trailing escape is dropped; the loop then reports the open quote.
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lex.escape => {
                                ch = c;
                                self.next();
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".into();
        }
        self.next();
        let mut out = String::from("<<");
        while let Some(c @ ('\t' | '\r' | ' ')) = self.peek() {
            out.push(c);
            self.next();
        }
        out
    }

    /// Reads a variable name: letters, digits and `_`, or one special parameter, or digits.
    /// Non-ASCII characters make the result untrusted: Go's Unicode classes differ from
    /// Rust's in places, and a different name would mean a different value.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if !ch.is_ascii() {
                self.mark_unknown("a variable name next to non-ASCII text".into());
            }
            let digit = |c: char| c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric());
            if name.is_empty() && digit(ch) {
                while let Some(c) = self.peek().filter(|c| digit(*c)) {
                    name.push(c);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphabetic() && !digit(ch) && ch != '_' {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }

    fn dollar(&mut self) -> Msg<String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(self.plain_value(&name, format!("${name}")));
        }
        self.next();
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{') | Some('}') | Some(':') => {
                return Err("syntax error: bad substitution".into())
            }
            _ => {}
        }
        let name = self.name();
        let ch = self.next();
        let mut chs = rune_text(ch);
        match ch {
            Some('}') => Ok(self.plain_value(&name, format!("${{{name}}}"))),
            Some(':') => {
                let ch2 = self.next();
                chs.push_str(&rune_text(ch2));
                self.modifier(&name, ch2, &chs, true)
            }
            Some('+' | '-' | '?' | '#' | '%') => self.modifier(&name, ch, &chs, false),
            Some('/') => self.replace(&name),
            None => Err("syntax error: missing '}'".into()),
            _ => Err(format!("unsupported modifier ({chs}) in substitution")),
        }
    }

    fn plain_value(&mut self, name: &str, literal: String) -> String {
        match self.get(name) {
            Got::Set(v) => v,
            Got::Unset if self.lex.skip_unset => literal,
            Got::Unset | Got::Unknown => String::new(),
        }
    }

    /// The nested `...}` of a modifier, with the frontend's error for a missing brace.
    fn nested(&mut self, stop: char, raw: bool, missing: &str) -> Msg<String> {
        match self.stop_on(Some(stop), raw) {
            Ok((w, _)) => Ok(w),
            Err(_) if self.peek().is_none() => Err(missing.to_string()),
            Err(e) => Err(e),
        }
    }

    fn modifier(
        &mut self,
        name: &str,
        ch: Option<char>,
        chs: &str,
        null_unset: bool,
    ) -> Msg<String> {
        let raw = matches!(ch, Some('#' | '%'));
        if null_unset && raw {
            return Err(format!("unsupported modifier ({chs}) in substitution"));
        }
        let mut word = self.nested('}', raw, "syntax error: missing '}'")?;
        let got = self.get(name);
        if self.lex.skip_unset && matches!(got, Got::Unset) {
            return Ok(format!("${{{name}{chs}{word}}}"));
        }
        let (value, set) = match &got {
            Got::Set(v) => (v.clone(), true),
            _ => (String::new(), false),
        };
        let empty = !set || (null_unset && value.is_empty());
        let unknown = matches!(got, Got::Unknown);
        match ch {
            Some('-') if unknown => Ok(String::new()),
            Some('-') => Ok(if empty { word } else { value }),
            Some('+') if unknown => Ok(String::new()),
            Some('+') => Ok(if empty { String::new() } else { word }),
            Some('?') if unknown => Ok(String::new()),
            Some('?') => {
                let reason = if !set {
                    "is not allowed to be unset"
                } else if empty {
                    "is not allowed to be empty"
                } else {
                    return Ok(value);
                };
                let message = if word.is_empty() {
                    reason.to_string()
                } else {
                    word
                };
                Err(format!("{name}: {message}"))
            }
            Some(c @ ('%' | '#')) => {
                let greedy = word.starts_with(c);
                if greedy {
                    word.remove(0);
                }
                // Compile even for an unknown value: a bad pattern fails whatever the value.
                let r = if c == '%' {
                    pattern::trim_suffix(&word, &value, greedy)
                } else {
                    pattern::trim_prefix(&word, &value, greedy)
                }?;
                Ok(if unknown { String::new() } else { r })
            }
            _ => Err(format!("unsupported modifier ({chs}) in substitution")),
        }
    }

    fn replace(&mut self, name: &str) -> Msg<String> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let pat = self.nested('/', true, "syntax error: missing '/' in ${}")?;
        let replacement = self.nested('}', true, "syntax error: missing '}'")?;
        let got = self.get(name);
        if self.lex.skip_unset && matches!(got, Got::Unset) {
            return Ok(format!("${{{name}/{pat}/{replacement}}}"));
        }
        let re = pattern::to_regex(&pat, true, false)
            .map_err(|e| format!("invalid pattern ({pat}) in substitution: {e}"))?;
        let value = match got {
            Got::Set(v) => v,
            Got::Unset => String::new(),
            Got::Unknown => return Ok(String::new()),
        };
        if all {
            // Go's ReplaceAllString expands `$1`-style templates, as does regex's replace_all.
            return Ok(re.replace_all(&value, replacement.as_str()).into_owned());
        }
        Ok(match re.find(&value) {
            Some(m) => format!(
                "{}{}{}",
                &value[..m.start()],
                replacement,
                &value[m.end()..]
            ),
            None => value,
        })
    }
}

/// Go's `string(rune)`, with end of input as U+FFFD.
fn rune_text(c: Option<char>) -> String {
    c.unwrap_or('\u{fffd}').to_string()
}

#[cfg(test)]
#[path = "shell_tests.rs"]
mod tests;

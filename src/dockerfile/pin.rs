//! Pinning FROM images by digest in the text BuildKit receives, so a build uses exactly the
//! base image content its hash was computed from (a tag that moves between Check and the build
//! cannot slip in). Only the image word of each FROM is replaced; line numbers, comments and
//! everything else stay as written.

use std::collections::BTreeMap;

/// `text` with the image of the FROM instruction starting on each given line (1-based)
/// replaced by its pinned reference. A FROM whose image word is not on its first line (a
/// continuation before the image) is left as written; the returned list names those lines.
pub fn pin_from_images(text: &str, pins: &BTreeMap<usize, String>) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(text.len() + pins.len() * 80);
    let mut skipped = Vec::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        match pins.get(&(i + 1)) {
            Some(pinned) => match replace_image_word(line, pinned) {
                Some(rewritten) => out.push_str(&rewritten),
                None => {
                    skipped.push(i + 1);
                    out.push_str(line);
                }
            },
            None => out.push_str(line),
        }
    }
    (out, skipped)
}

/// The byte range of the image word of a `FROM [--flag=value ...] image [AS name]` line.
fn image_word(line: &str) -> Option<(usize, usize)> {
    let mut words = words_with_offsets(line);
    let (_, keyword) = words.next()?;
    if !keyword.eq_ignore_ascii_case("from") {
        return None;
    }
    for (start, word) in words {
        if word.starts_with("--") {
            continue;
        }
        // A continuation before the image word: the image is on a later line.
        if word.len() == 1 && (word == "\\" || word == "`") {
            return None;
        }
        return Some((start, start + word.len()));
    }
    None
}

fn replace_image_word(line: &str, pinned: &str) -> Option<String> {
    let (start, end) = image_word(line)?;
    Some(format!("{}{pinned}{}", &line[..start], &line[end..]))
}

fn words_with_offsets(line: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest = line;
    let mut offset = 0;
    std::iter::from_fn(move || {
        let trimmed = rest.trim_start();
        offset += rest.len() - trimmed.len();
        if trimmed.is_empty() {
            return None;
        }
        let len = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
        let word = &trimmed[..len];
        let start = offset;
        offset += len;
        rest = &trimmed[len..];
        Some((start, word))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pins(list: &[(usize, &str)]) -> BTreeMap<usize, String> {
        list.iter().map(|(l, p)| (*l, p.to_string())).collect()
    }

    #[test]
    fn replaces_only_the_image_word() {
        let text = "ARG V=3.12\nFROM --platform=$BUILDPLATFORM python:${V} AS build\nRUN x\nfrom busybox\n";
        let (out, skipped) = pin_from_images(
            text,
            &pins(&[(2, "python:3.12@sha256:aa"), (4, "busybox@sha256:bb")]),
        );
        assert_eq!(
            out,
            "ARG V=3.12\nFROM --platform=$BUILDPLATFORM python:3.12@sha256:aa AS build\nRUN x\nfrom busybox@sha256:bb\n"
        );
        assert!(skipped.is_empty());
    }

    #[test]
    fn a_continuation_before_the_image_is_left_alone() {
        let text = "FROM --platform=linux/arm64 \\\n  python:3.12\n";
        let (out, skipped) = pin_from_images(text, &pins(&[(1, "python@sha256:aa")]));
        assert_eq!(out, text);
        assert_eq!(skipped, vec![1]);
    }

    #[test]
    fn line_endings_and_other_lines_are_kept() {
        let text = "FROM a\r\nCOPY . /x\r\n";
        let (out, _) = pin_from_images(text, &pins(&[(1, "a@sha256:cc")]));
        assert_eq!(out, "FROM a@sha256:cc\r\nCOPY . /x\r\n");
    }
}

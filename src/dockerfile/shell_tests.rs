use std::collections::BTreeMap;

use super::*;

struct MapEnv(BTreeMap<&'static str, &'static str>, Vec<&'static str>);

impl Env for MapEnv {
    fn lookup(&self, name: &str) -> Lookup {
        if self.1.contains(&name) {
            return Lookup::Unknown;
        }
        match self.0.get(name) {
            Some(v) => Lookup::Set(v.to_string()),
            None => Lookup::Unset,
        }
    }
}

fn env() -> MapEnv {
    MapEnv(
        BTreeMap::from([
            ("HOME", "/root"),
            ("EMPTY", ""),
            ("FILE", "archive.tar.gz"),
            ("SP", "a b"),
            ("DIR", "src/app/main"),
        ]),
        vec!["IMG"],
    )
}

fn word(input: &str) -> Result<String, String> {
    process(&Lex::new('\\'), input, &env()).map(|o| o.result)
}

#[test]
fn quotes_and_escapes() {
    let cases: &[(&str, Option<&str>)] = &[
        ("plain", Some("plain")),
        ("a'b'c", Some("abc")),
        ("a'bc", None),
        ("a\\'b", Some("a'b")),
        ("x\\y", Some("xy")),
        ("\"x\\y\"", Some("x\\y")),
        ("\"x\\\\y\"", Some("x\\y")),
        ("'x\\y'", Some("x\\y")),
        ("end\\", Some("end")),
        ("end\\\\", Some("end\\")),
        ("\"open", None),
        ("'it''s'", Some("its")),
        ("\"a'b\"", Some("a'b")),
        ("'$HOME'", Some("$HOME")),
        ("\"$HOME\"", Some("/root")),
        ("\\$HOME", Some("$HOME")),
        ("\"\\$HOME\"", Some("$HOME")),
        ("한'국'어", Some("한국어")),
    ];
    for (input, want) in cases {
        assert_eq!(word(input).ok().as_deref(), *want, "{input:?}");
    }
}

#[test]
fn parameter_forms() {
    let cases: &[(&str, Option<&str>)] = &[
        ("$HOME/x", Some("/root/x")),
        ("${HOME}x", Some("/rootx")),
        ("$NOPE.", Some(".")),
        ("$.", Some("$.")),
        ("a$1b", Some("ab")),
        ("${NOPE:-def}", Some("def")),
        ("${EMPTY:-def}", Some("def")),
        ("${EMPTY-def}", Some("")),
        ("${NOPE-def}", Some("def")),
        ("${HOME:+alt}", Some("alt")),
        ("${EMPTY:+alt}", Some("")),
        ("${EMPTY+alt}", Some("alt")),
        ("${NOPE+alt}", Some("")),
        ("${NOPE:-${HOME:-x}}", Some("/root")),
        ("${HOME?}", Some("/root")),
        ("${EMPTY?}", Some("")),
        ("${EMPTY:?}", None),
        ("${NOPE?must be set}", None),
        ("${FILE%.gz}", Some("archive.tar")),
        ("${FILE%%.*}", Some("archive")),
        ("${FILE#*.}", Some("tar.gz")),
        ("${FILE##*.}", Some("gz")),
        ("${DIR/a/A}", Some("src/App/main")),
        ("${DIR//a/A}", Some("src/App/mAin")),
        ("${DIR//\\//-}", Some("src-app-main")),
        ("${}", None),
        ("${:}", None),
        ("${HOME", None),
        ("${HOME:=x}", None),
        ("${HOME:x}", None),
        ("${FILE:#x}", None),
        ("${a}}", Some("}")),
        ("${a:-b {c}", Some("b {c")),
    ];
    for (input, want) in cases {
        assert_eq!(word(input).ok().as_deref(), *want, "{input:?}");
    }
}

#[test]
fn unknown_variables_are_reported_not_guessed() {
    let o = process(&Lex::new('\\'), "src/$IMG/x", &env()).unwrap();
    assert_eq!(o.unknown.as_deref(), Some("IMG"));
    let o = process(&Lex::new('\\'), "${IMG:?}", &env()).unwrap();
    assert_eq!(o.unknown.as_deref(), Some("IMG"));
    // A syntax error is an error whatever the unknown value would be.
    assert!(process(&Lex::new('\\'), "${IMG:-x", &env()).is_err());
    let o = process(&Lex::new('\\'), "$HOME", &env()).unwrap();
    assert_eq!(o.unknown, None);
    let o = process(&Lex::new('\\'), "$HOMEé", &env()).unwrap();
    assert!(
        o.unknown.is_some(),
        "non-ASCII next to a name is not trusted"
    );
}

#[test]
fn words_split_after_expansion() {
    let o = process(&Lex::new('\\'), "a $SP \"c d\"", &env()).unwrap();
    assert_eq!(o.words, vec!["a", "a", "b", "c d"]);
    assert_eq!(o.result, "a a b c d");
}

#[test]
fn backtick_escape() {
    let o = process(&Lex::new('`'), "c:`\\dir`$x", &env()).unwrap();
    assert_eq!(o.result, "c:\\dir$x");
}

#[test]
fn raw_modes_for_heredoc_detection() {
    let lex = Lex {
        escape: '\\',
        raw_quotes: true,
        raw_escapes: true,
        skip_unset: true,
    };
    let o = process(&lex, "cat <<'EOF' $X ${Y:-z} <<  END", &NoEnv).unwrap();
    assert_eq!(o.words, vec!["cat", "<<'EOF'", "$X", "${Y:-z}", "<<  END"]);
}

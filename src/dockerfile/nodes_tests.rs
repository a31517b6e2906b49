use super::*;

fn node(line: &str) -> Node {
    new_node(line, '\\').unwrap()
}

#[test]
fn flags_are_split_off() {
    let n = node("COPY --from=build --chown=1:1 a b /dst/");
    assert_eq!(n.flags, vec!["--from=build", "--chown=1:1"]);
    assert_eq!(n.args, vec!["a", "b", "/dst/"]);
    let n = node("COPY --from=\"a b\" -- --weird /dst");
    assert_eq!(n.flags, vec!["--from=a b"]);
    assert_eq!(n.args, vec!["--weird", "/dst"]);
    let n = node("COPY -x /dst");
    assert!(n.flags.is_empty());
    assert_eq!(n.args, vec!["-x", "/dst"]);
    let n = node("RUN --mount=type=bind,target=/x\\,y echo");
    assert_eq!(n.flags, vec!["--mount=type=bind,target=/x,y"]);
    // Byte-wise flag reading: a multi-byte character becomes Latin-1 characters.
    let n = node("COPY --from=é a b");
    assert_eq!(n.flags, vec!["--from=\u{c3}\u{a9}"]);
}

#[test]
fn json_and_shell_forms() {
    let n = node("COPY [\"a b\", \"c\", \"/d\"]");
    assert!(n.json);
    assert_eq!(n.args, vec!["a b", "c", "/d"]);
    let n = node("COPY [\"a\", \"b\"");
    assert!(!n.json);
    assert_eq!(n.args, vec!["[\"a\",", "\"b\""]);
    assert!(new_node("COPY [1, \"b\"]", '\\').is_err());
    let n = node("RUN [\"echo\", \"hi\"]");
    assert_eq!(n.args, vec!["echo", "hi"]);
    let n = node("RUN echo hi  there");
    assert_eq!(n.args, vec!["echo hi  there"]);
    let n = node("FROM  alpine   AS  build");
    assert_eq!(n.args, vec!["alpine", "AS", "build"]);
}

#[test]
fn env_and_arg_words() {
    let n = node("ENV A=1 B=\"x y\" C=a\\ b");
    assert_eq!(
        n.args,
        vec!["A", "1", "=", "B", "\"x y\"", "=", "C", "a\\ b", "="]
    );
    let n = node("ENV OLD value with spaces");
    assert_eq!(n.args, vec!["OLD", "value with spaces", ""]);
    assert!(new_node("ENV A=1 B", '\\').is_err());
    assert!(new_node("ENV A", '\\').is_err());
    let n = node("ARG A B=2 C='x y'");
    assert_eq!(n.args, vec!["A", "B=2", "C='x y'"]);
}

#[test]
fn onbuild_and_healthcheck() {
    let n = node("ONBUILD COPY --from=x a b");
    assert_eq!(n.args, vec!["COPY", "a", "b"]);
    assert_eq!(n.sub.as_ref().unwrap().flags, vec!["--from=x"]);
    assert!(n.can_contain_heredoc());
    let n = node("HEALTHCHECK --interval=5s CMD curl -f http://x/");
    assert_eq!(n.flags, vec!["--interval=5s"]);
    assert_eq!(n.args, vec!["CMD", "curl -f http://x/"]);
    let n = node("HEALTHCHECK NONE");
    assert_eq!(n.args, vec!["NONE"]);
}

#[test]
fn parse_words_quotes_and_escapes() {
    assert_eq!(
        parse_words("a 'b c' \"d\\\" e\"", '\\'),
        vec!["a", "'b c'", "\"d\\\" e\""]
    );
    assert_eq!(parse_words("x\\ y z", '\\'), vec!["x\\ y", "z"]);
    assert_eq!(parse_words("''", '\\'), vec!["''"]);
    assert_eq!(parse_words("  ", '\\'), Vec::<String>::new());
    assert_eq!(parse_words("end\\", '\\'), vec!["end"]);
}

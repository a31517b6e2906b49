use super::*;

fn cmds(text: &str) -> Vec<(String, Vec<String>, usize, usize)> {
    parse(text)
        .unwrap()
        .nodes
        .into_iter()
        .map(|n| (n.cmd, n.args, n.start_line, n.end_line))
        .collect()
}

#[test]
fn continuations_skip_comments_and_blank_lines() {
    let text = "FROM a\nRUN echo \\\n# a comment\n\n    one \\\n  two\nCOPY x y\n";
    let got = cmds(text);
    assert_eq!(got.len(), 3);
    assert_eq!(got[1].1, vec!["echo     one   two"]);
    assert_eq!((got[1].2, got[1].3), (2, 6));
    assert_eq!((got[2].2, got[2].3), (7, 7));
}

#[test]
fn continuation_rules() {
    // An escaped escape does not continue; a trailing one after spaces does.
    let got = cmds("FROM a\nRUN a \\\\\nRUN b \\   \n c\n");
    assert_eq!(got[1].1, vec!["a \\\\"]);
    assert_eq!(got[2].1, vec!["b  c"]);
    // A continuation at the end of the file ends the instruction.
    let got = cmds("FROM a\nRUN x \\");
    assert_eq!(got[1].1, vec!["x"]);
}

#[test]
fn escape_directive() {
    let got = cmds("# escape=`\nFROM a\nCOPY a `\n  b c:\\dst\\\n");
    assert_eq!(got[1].1, vec!["a", "b", "c:\\dst\\"]);
    assert_eq!(parse("# escape=`\nFROM a").unwrap().escape, '`');
    // Directives only count at the very top.
    assert_eq!(parse("FROM a\n# escape=`\n").unwrap().escape, '\\');
    assert_eq!(parse("\n# escape=`\nFROM a").unwrap().escape, '\\');
    assert_eq!(parse("# other\n# escape=`\nFROM a").unwrap().escape, '\\');
    assert_eq!(parse("#ESCAPE = ` \nFROM a").unwrap().escape, '`');
    let e = parse("# escape=x\nFROM a").unwrap_err();
    assert_eq!(e.line, 1);
    assert!(parse("# escape=`\n# escape=\\\nFROM a").is_err());
}

#[test]
fn heredoc_bodies_are_not_instructions() {
    let text =
        "FROM a\nRUN <<EOF\nnot an instruction\nEOF\nCOPY <<A <<B /d/\na\nA\nb\nB\nCOPY x y\n";
    let p = parse(text).unwrap();
    assert_eq!(p.nodes.len(), 4);
    assert_eq!(p.nodes[1].heredocs[0].content, "not an instruction\n");
    assert_eq!(p.nodes[2].heredocs.len(), 2);
    assert_eq!(p.nodes[2].heredocs[1].content, "b\n");
    assert_eq!((p.nodes[2].start_line, p.nodes[2].end_line), (5, 9));
    assert_eq!(p.nodes[3].start_line, 10);
}

#[test]
fn heredoc_variants() {
    let p = parse("FROM a\nRUN <<-EOT\n\techo\n\tEOT\n").unwrap();
    assert!(p.nodes[1].heredocs[0].chomp);
    let p = parse("FROM a\nCOPY <<\"EOF\" /x\n$HOME\nEOF\n").unwrap();
    assert!(!p.nodes[1].heredocs[0].expand);
    let p = parse("FROM a\nRUN 3<<EOF cat\nx\nEOF\n").unwrap();
    assert_eq!(p.nodes[1].heredocs[0].name, "EOF");
    // Without `-`, a tab-indented terminator is content.
    let e = parse("FROM a\nRUN <<EOT\n\techo\n\tEOT\n").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.message.contains("unterminated heredoc"));
    // JSON form never opens heredocs.
    let p = parse("FROM a\nRUN [\"cat\", \"<<EOF\"]\nEOF\n");
    assert!(
        p.is_ok(),
        "EOF is then an (unknown) instruction, found later"
    );
    // Quoted `<<` is not a heredoc.
    assert_eq!(
        parse("FROM a\nRUN echo \"<<EOF\"\nRUN b\n")
            .unwrap()
            .nodes
            .len(),
        3
    );
    // ONBUILD triggers may open heredocs.
    let p = parse("FROM a\nONBUILD RUN <<EOF\nx\nEOF\n").unwrap();
    assert_eq!(p.nodes.len(), 2);
}

#[test]
fn heredoc_words() {
    assert_eq!(parse_heredoc("<<EOF").unwrap().unwrap().name, "EOF");
    let quoted = parse_heredoc("<<'E F'").unwrap().unwrap();
    assert_eq!((quoted.name.as_str(), quoted.expand), ("E F", false));
    assert!(parse_heredoc("<<E F").unwrap().is_none(), "two words");
    assert!(parse_heredoc("<<").unwrap().is_none());
    assert!(parse_heredoc("a<<EOF").unwrap().is_none());
    assert!(parse_heredoc("<<<EOF").unwrap().is_none());
    assert!(parse_heredoc("<<-EOF").unwrap().unwrap().chomp);
}

#[test]
fn files_without_instructions_and_long_lines() {
    assert!(parse("# only a comment\n\n").is_err());
    assert!(parse("").is_err());
    let long = format!("FROM a\nRUN {}\n", "x".repeat(70_000));
    let e = parse(&long).unwrap_err();
    assert!(e.message.contains("max allowed size"));
    let bom = "\u{feff}FROM a\n";
    assert_eq!(cmds(bom)[0].0, "FROM");
}

#[test]
fn directive_regex() {
    assert_eq!(directive("escape=`"), Some(("escape", "`")));
    assert_eq!(directive("escape = ` "), Some(("escape", "`")));
    assert_eq!(directive("syntax=a b "), Some(("syntax", "a b")));
    assert_eq!(directive("escape=  "), Some(("escape", " ")));
    assert_eq!(directive("escape="), None);
    assert_eq!(directive("1x=y"), None);
    assert_eq!(directive("x y=z"), None);
}

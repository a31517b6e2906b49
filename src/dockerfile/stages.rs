//! The stage graph: one state per stage plus one per `--from` that names no stage (an
//! image, a named context or scratch), bases and dependencies, the target, what is
//! reachable from it, and what each base resolves to. Mirrors the frontend's
//! `dispatchStates`, including its numbering (which `COPY --from=<index>` uses).

use std::collections::{BTreeMap, BTreeSet};

use super::env::Globals;
use super::error::DockerfileError;
use super::instructions::{Cmd, File, Meta};
use super::platform::{self, Platform};
use super::reference::{parse_normalized, Reference};
use super::shell::{process, Lex, NoEnv};
use super::ImageUseKind;

/// What a state's content comes from.
#[derive(Debug, Clone)]
pub(crate) enum Origin {
    /// A stage of the file (index into `File::stages`).
    Stage(usize),
    /// A `--from` naming no stage.
    External {
        /// Where it is named.
        meta: Meta,
        /// COPY or RUN --mount.
        kind: ImageUseKind,
    },
}

/// What a state without a base stage resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// Built on another stage (see `State::base`).
    Stage,
    /// `scratch`.
    Scratch,
    /// A named context, by the key the user gave.
    Named(String),
    /// A registry image.
    Image(Reference),
}

/// One node of the graph.
#[derive(Debug, Clone)]
pub(crate) struct State {
    /// Stage or external.
    pub origin: Origin,
    /// Expanded base name (stages) or the `--from` text (externals).
    pub base_name: String,
    /// Stage name, lowercased.
    pub name: Option<String>,
    /// `--platform` of the stage, parsed.
    pub platform: Option<Platform>,
    /// Base stage (state index).
    pub base: Option<usize>,
    /// A named context replacing the whole stage (its name matched one).
    pub replaced_by: Option<String>,
    /// Dependencies (state indices) from COPY --from and RUN --mount.
    pub deps: Vec<usize>,
    /// What the base resolves to.
    pub resolved: Resolved,
}

/// The graph of a file for one build.
#[derive(Debug)]
pub(crate) struct Graph {
    /// States in the frontend's order.
    pub states: Vec<State>,
    /// Per stage, per command: the source states (COPY: 0 or 1; RUN: one per mount).
    pub sources: Vec<Vec<Vec<usize>>>,
    /// The target state.
    pub target: usize,
    /// Reachable from the target.
    pub reachable: Vec<bool>,
}

/// What graph building needs from the build.
pub(crate) struct Inputs<'a> {
    /// The file's lexer.
    pub lex: &'a Lex,
    /// Globals for FROM lines.
    pub globals: &'a Globals,
    /// Target stage name, if any.
    pub target: Option<&'a str>,
    /// TARGETPLATFORM.
    pub platform: &'a Platform,
    /// Named context keys.
    pub named: &'a BTreeSet<String>,
}

fn err(meta: &Meta, message: String) -> DockerfileError {
    DockerfileError::new(meta.line, message)
}

/// Builds the graph, failing where the frontend fails before dispatching.
pub(crate) fn build(file: &File, inp: &Inputs<'_>) -> Result<Graph, DockerfileError> {
    if file.stages.is_empty() {
        return Err(DockerfileError::new(
            0,
            "dockerfile contains no stages to build; add a FROM line",
        ));
    }
    let mut g = Graph {
        states: Vec::new(),
        sources: Vec::new(),
        target: 0,
        reachable: Vec::new(),
    };
    let mut by_name: BTreeMap<String, usize> = BTreeMap::new();
    for (i, st) in file.stages.iter().enumerate() {
        let state = stage_state(i, st, inp, &by_name)?;
        if let Some(n) = &state.name {
            by_name.insert(n.clone(), g.states.len());
        }
        g.states.push(state);
    }
    g.target = match inp.target {
        None => g.states.len() - 1,
        Some(t) => *by_name.get(&t.to_lowercase()).ok_or_else(|| {
            let names: Vec<&str> = by_name.keys().map(String::as_str).collect();
            DockerfileError::new(
                0,
                format!(
                    "target stage {t:?} could not be found; the stages are named: {}",
                    if names.is_empty() {
                        "(none)".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            )
        })?,
    };
    for (i, st) in file.stages.iter().enumerate() {
        let mut per_cmd = Vec::with_capacity(st.commands.len());
        for c in &st.commands {
            let srcs = command_sources(&mut g, &by_name, &c.cmd, &c.meta, inp.lex)?;
            g.states[i].deps.extend(srcs.iter().copied());
            per_cmd.push(srcs);
        }
        g.sources.push(per_cmd);
    }
    check_cycles(&g, file)?;
    g.reachable = reachable(&g);
    resolve(&mut g, file, inp)?;
    Ok(g)
}

fn stage_state(
    i: usize,
    st: &super::instructions::StageDef,
    inp: &Inputs<'_>,
    by_name: &BTreeMap<String, usize>,
) -> Result<State, DockerfileError> {
    let base = global_word(inp, &st.base).map_err(|e| err(&st.meta, e))?;
    if base.is_empty() {
        return Err(err(
            &st.meta,
            format!(
                "base name ({}) should not be blank; declare the ARG before the first FROM or pass it as a build arg",
                st.base
            ),
        ));
    }
    let mut platform = None;
    if !st.platform.is_empty() {
        let v = match global_word(inp, &st.platform) {
            Ok(v) => v,
            Err(e) => {
                return Err(err(
                    &st.meta,
                    format!(
                        "failed to process arguments for platform {}: {e}",
                        st.platform
                    ),
                ))
            }
        };
        if v.is_empty() {
            return Err(err(
                &st.meta,
                format!("empty platform value from expression {}", st.platform),
            ));
        }
        let p = platform::parse(&v, &inp.platform.arch).map_err(|e| err(&st.meta, e))?;
        platform = Some(p);
    }
    let replaced_by = match &st.name {
        Some(n) if !n.eq_ignore_ascii_case("scratch") && !n.eq_ignore_ascii_case("context") => {
            named_key(n, platform.as_ref().unwrap_or(inp.platform), inp.named)
        }
        _ => None,
    };
    let base_stage = if replaced_by.is_some() {
        None
    } else {
        by_name.get(&base).copied()
    };
    Ok(State {
        origin: Origin::Stage(i),
        base_name: base,
        name: st.name.clone(),
        platform,
        base: base_stage,
        replaced_by,
        deps: Vec::new(),
        resolved: Resolved::Stage,
    })
}

/// Expands a FROM word with the globals (all known, so the text is what BuildKit uses).
fn global_word(inp: &Inputs<'_>, word: &str) -> Result<String, String> {
    process(inp.lex, word, inp.globals).map(|o| o.result)
}

/// The key of the named context that stands for `name` on `platform`, if the user gave one.
pub(crate) fn named_key(
    name: &str,
    platform: &Platform,
    named: &BTreeSet<String>,
) -> Option<String> {
    if named.is_empty() {
        return None;
    }
    let familiar = parse_normalized(name).ok()?.context_name();
    let with_platform = format!("{familiar}::{}", platform.format_all());
    [with_platform, familiar]
        .into_iter()
        .find(|k| named.contains(k))
}

fn external(g: &mut Graph, name: &str, meta: &Meta, kind: ImageUseKind) -> usize {
    g.states.push(State {
        origin: Origin::External {
            meta: meta.clone(),
            kind,
        },
        base_name: name.to_string(),
        name: None,
        platform: None,
        base: None,
        replaced_by: None,
        deps: Vec::new(),
        resolved: Resolved::Stage,
    });
    g.states.len() - 1
}

/// The source states of one command (the frontend's `toCommand` and `detectRunMount`).
fn command_sources(
    g: &mut Graph,
    by_name: &BTreeMap<String, usize>,
    cmd: &Cmd,
    meta: &Meta,
    lex: &Lex,
) -> Result<Vec<usize>, DockerfileError> {
    match cmd {
        Cmd::Copy(c) if !c.from.is_empty() => {
            let checked = process(lex, &c.from, &NoEnv).map_err(|e| err(meta, e))?;
            if checked.result != c.from {
                return Err(err(
                    meta,
                    "variable expansion is not supported for --from, define a new stage with FROM \
                     using ARG from global scope as a workaround"
                        .into(),
                ));
            }
            if let Some(index) = go_atoi(&c.from) {
                if index < 0 || index as usize >= g.states.len() {
                    return Err(err(
                        meta,
                        format!("invalid stage index {index}; --from=<n> counts stages from 0"),
                    ));
                }
                return Ok(vec![index as usize]);
            }
            let s = match by_name.get(&c.from.to_lowercase()) {
                Some(&s) => s,
                None => external(g, &c.from, meta, ImageUseKind::CopyFrom),
            };
            Ok(vec![s])
        }
        Cmd::Run(mounts) => Ok(mounts
            .iter()
            .map(|m| {
                let from = if m.from.is_empty() {
                    "scratch"
                } else {
                    m.from.as_str()
                };
                match by_name.get(&from.to_lowercase()) {
                    Some(&s) => s,
                    None => external(g, from, meta, ImageUseKind::MountFrom),
                }
            })
            .collect()),
        _ => Ok(Vec::new()),
    }
}

/// Go's `strconv.Atoi`: optional sign and decimal digits, within 64 bits.
fn go_atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn stage_label(g: &Graph, i: usize) -> String {
    match &g.states[i].name {
        Some(n) => n.clone(),
        None if g.states.len() == 1 => String::new(),
        None => format!("stage-{i}"),
    }
}

fn check_cycles(g: &Graph, file: &File) -> Result<(), DockerfileError> {
    fn visit(g: &Graph, s: usize, done: &mut [bool], path: &mut [bool]) -> bool {
        if done[s] {
            return false;
        }
        done[s] = true;
        path[s] = true;
        for &d in &g.states[s].deps {
            if path[d] || visit(g, d, done, path) {
                return true;
            }
        }
        path[s] = false;
        false
    }
    let n = g.states.len();
    let (mut done, mut path) = (vec![false; n], vec![false; n]);
    for s in 0..n {
        if visit(g, s, &mut done, &mut path) {
            let line = match g.states[s].origin {
                Origin::Stage(i) => file.stages[i].meta.line,
                Origin::External { ref meta, .. } => meta.line,
            };
            return Err(DockerfileError::new(
                line,
                format!(
                    "circular dependency detected on stage: {}; a stage cannot copy or mount from itself or from a stage that depends on it",
                    stage_label(g, s)
                ),
            ));
        }
    }
    Ok(())
}

fn reachable(g: &Graph) -> Vec<bool> {
    let mut seen = vec![false; g.states.len()];
    let mut todo = vec![g.target];
    while let Some(s) = todo.pop() {
        if std::mem::replace(&mut seen[s], true) {
            continue;
        }
        todo.extend(g.states[s].base);
        todo.extend(g.states[s].deps.iter().copied());
    }
    seen
}

/// Resolves every state without a base stage: invalid references fail even when
/// unreachable; named contexts are looked up only for reachable ones.
fn resolve(g: &mut Graph, file: &File, inp: &Inputs<'_>) -> Result<(), DockerfileError> {
    for i in 0..g.states.len() {
        let st = &g.states[i];
        if st.base.is_some() {
            continue;
        }
        let meta = match &st.origin {
            Origin::Stage(k) => file.stages[*k].meta.clone(),
            Origin::External { meta, .. } => meta.clone(),
        };
        if st.base_name == "scratch" && st.replaced_by.is_none() {
            g.states[i].resolved = Resolved::Scratch;
            continue;
        }
        let r = parse_normalized(&st.base_name).map_err(|e| {
            err(
                &meta,
                format!("failed to parse stage name {:?}: {e}", st.base_name),
            )
        })?;
        let resolved = if let Some(k) = &st.replaced_by {
            Resolved::Named(k.clone())
        } else {
            let p = st.platform.as_ref().unwrap_or(inp.platform);
            match named_key(&r.normalized(), p, inp.named).filter(|_| g.reachable[i]) {
                Some(k) => Resolved::Named(k),
                None => Resolved::Image(r),
            }
        };
        g.states[i].resolved = resolved;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atoi_like_go() {
        assert_eq!(go_atoi("0"), Some(0));
        assert_eq!(go_atoi("+1"), Some(1));
        assert_eq!(go_atoi("-1"), Some(-1));
        assert_eq!(go_atoi("01"), Some(1));
        assert_eq!(go_atoi("1a"), None);
        assert_eq!(go_atoi(""), None);
        assert_eq!(go_atoi("99999999999999999999"), None);
    }
}

//! Walks the reachable stages in build order with their variable scopes and collects what
//! each instruction reads from the main and named contexts (the frontend's `ctxPaths` and
//! named contexts' `paths`), and the images used.

use super::env::{ArgCtx, Globals, Root, Scope};
use super::error::DockerfileError;
use super::instructions::{Cmd, File, Meta};
use super::platform::{self, Platform};
use super::reads::{Collector, Ctx};
use super::shell::Lex;
use super::stages::{self, Graph, Inputs, Origin, Resolved};
use super::{Analysis, BuildFacts, ImageUse, ImageUseKind, Reads, WholeReason};

/// Analyzes a typed file for one build.
pub(crate) fn run(file: &File, facts: &BuildFacts<'_>) -> Result<Analysis, DockerfileError> {
    let target_platform = fact_platform("platform", facts.platform, "amd64")?;
    let build_platform = fact_platform("build_platform", facts.build_platform, "amd64")?;
    let lex = Lex::new(file.escape);
    let target = facts.target.filter(|t| !t.is_empty());
    let target_name = match target {
        Some(t) => t.to_string(),
        None => file
            .stages
            .last()
            .and_then(|s| s.name.clone())
            .unwrap_or_default(),
    };
    let globals = globals(
        file,
        facts,
        &lex,
        &target_platform,
        &build_platform,
        &target_name,
    )?;
    let inputs = Inputs {
        lex: &lex,
        globals: &globals,
        target,
        platform: &target_platform,
        named: facts.named_contexts,
    };
    let graph = stages::build(file, &inputs)?;
    let mut walk = Walk {
        file,
        graph: &graph,
        lex: &lex,
        facts,
        globals: &globals,
        target_platform: &target_platform,
        out: Collector::default(),
        scopes: vec![None; graph.states.len()],
    };
    walk.stages()?;
    let images = images(file, &graph);
    let (main, named) = walk.out.finish();
    Ok(Analysis {
        main,
        named,
        images,
        syntax: None,
    })
}

/// The answer when a frontend we do not mirror reads the file: everything may be read.
pub(crate) fn foreign_frontend(
    frontend: &str,
    directive: Option<String>,
    file: Option<File>,
    facts: &BuildFacts<'_>,
) -> Analysis {
    let (line, instruction) = match &directive {
        Some(d) if d == frontend => (1, format!("# syntax={d}")),
        _ => (0, format!("--build-arg BUILDKIT_SYNTAX={frontend}")),
    };
    let reason = WholeReason {
        line,
        instruction,
        why: format!(
            "the frontend {frontend:?} is not the Dockerfile 1.x frontend, so what it reads cannot \
             be known; remove the syntax directive (or use docker/dockerfile:1) to hash only what \
             the build reads"
        ),
    };
    let images = file
        .and_then(|f| run(&f, facts).ok())
        .map(|a| a.images)
        .unwrap_or_default();
    Analysis {
        main: Reads::Whole(vec![reason.clone()]),
        named: facts
            .named_contexts
            .iter()
            .map(|k| (k.clone(), Reads::Whole(vec![reason.clone()])))
            .collect(),
        images,
        syntax: directive,
    }
}

fn fact_platform(what: &str, value: &str, default_arch: &str) -> Result<Platform, DockerfileError> {
    platform::parse(value, default_arch)
        .map_err(|e| DockerfileError::new(0, format!("build setting {what}: {e}")))
}

/// The automatic platform ARGs and the ARGs before the first FROM (`defaultArgs` and
/// `buildMetaArgs`).
fn globals(
    file: &File,
    facts: &BuildFacts<'_>,
    lex: &Lex,
    tp: &Platform,
    bp: &Platform,
    target: &str,
) -> Result<Globals, DockerfileError> {
    let target = if target.is_empty() { "default" } else { target };
    let defaults = [
        ("BUILDPLATFORM", bp.format()),
        ("BUILDOS", bp.os.clone()),
        ("BUILDOSVERSION", bp.os_version.clone()),
        ("BUILDARCH", bp.arch.clone()),
        ("BUILDVARIANT", bp.variant.clone()),
        ("TARGETPLATFORM", tp.format_all()),
        ("TARGETOS", tp.os.clone()),
        ("TARGETOSVERSION", tp.os_version.clone()),
        ("TARGETARCH", tp.arch.clone()),
        ("TARGETVARIANT", tp.variant.clone()),
        ("TARGETSTAGE", target.to_string()),
    ];
    let mut g = Globals::default();
    for (k, v) in defaults {
        let v = facts.build_args.get(k).cloned().unwrap_or(v);
        g.0.insert(k.to_string(), v);
    }
    for (meta, args) in &file.meta_args {
        for (k, default) in args {
            let value = match (facts.build_args.get(k), default) {
                (Some(b), _) => Some(b.clone()),
                (None, Some(d)) => Some(
                    super::shell::process(lex, d, &g)
                        .map_err(|e| DockerfileError::new(meta.line, e))?
                        .result,
                ),
                (None, None) => None,
            };
            if let Some(v) = value {
                g.0.insert(k.clone(), v);
            }
        }
    }
    Ok(g)
}

struct Walk<'a> {
    file: &'a File,
    graph: &'a Graph,
    lex: &'a Lex,
    facts: &'a BuildFacts<'a>,
    globals: &'a Globals,
    target_platform: &'a Platform,
    out: Collector,
    scopes: Vec<Option<Scope>>,
}

impl Walk<'_> {
    fn stages(&mut self) -> Result<(), DockerfileError> {
        let g = self.graph;
        for s in 0..g.states.len() {
            let Origin::Stage(k) = g.states[s].origin else {
                continue;
            };
            if !g.reachable[s] {
                continue;
            }
            let st = &g.states[s];
            let def = &self.file.stages[k];
            if let Some(nc) = &st.replaced_by {
                if s == g.target {
                    let why = format!("the target stage is replaced by the named context {nc:?}");
                    self.out.whole(Ctx::Named(nc.clone()), &def.meta, why);
                }
                continue;
            }
            let scope = self.start_scope(s, k)?;
            let scope = self.commands(s, k, scope)?;
            self.scopes[s] = Some(scope);
        }
        Ok(())
    }

    /// The scope a stage starts with, and the whole-context rules about its base.
    fn start_scope(&mut self, s: usize, k: usize) -> Result<Scope, DockerfileError> {
        let g = self.graph;
        let st = &g.states[s];
        let def = &self.file.stages[k];
        if let Some(b) = st.base {
            let base = &g.states[b];
            if let Some(nc) = &base.replaced_by {
                let name = base.name.clone().unwrap_or_default();
                let why = format!("this stage is built on stage {name:?}, which the named context {nc:?} replaces");
                self.out.whole(Ctx::Named(nc.clone()), &def.meta, why);
                return Ok(Scope::new(Root::Opaque));
            }
            if let Origin::Stage(bk) = base.origin {
                let has_onbuild = self.file.stages[bk]
                    .commands
                    .iter()
                    .any(|c| matches!(c.cmd, Cmd::Onbuild));
                if has_onbuild {
                    let why = format!(
                        "this stage is built on stage {:?}, whose ONBUILD triggers run here and may read anything",
                        base.name.clone().unwrap_or_else(|| base.base_name.clone())
                    );
                    self.whole_everywhere(&def.meta, &why);
                }
            }
            return Ok(self.scopes[b]
                .clone()
                .unwrap_or_else(|| Scope::new(Root::Opaque)));
        }
        Ok(match &st.resolved {
            Resolved::Scratch => {
                let os = st
                    .platform
                    .as_ref()
                    .unwrap_or(self.target_platform)
                    .os
                    .clone();
                Scope::new(Root::Scratch {
                    windows: os == "windows",
                })
            }
            Resolved::Named(nc) => {
                self.out.whole(
                    Ctx::Named(nc.clone()),
                    &def.meta,
                    format!("FROM uses the named context {nc:?} as the base of the stage"),
                );
                Scope::new(Root::Opaque)
            }
            _ => Scope::new(Root::Opaque),
        })
    }

    fn whole_everywhere(&mut self, meta: &Meta, why: &str) {
        self.out.whole(Ctx::Main, meta, why.to_string());
        for nc in self.facts.named_contexts {
            self.out
                .whole(Ctx::Named(nc.clone()), meta, why.to_string());
        }
    }

    fn commands(&mut self, s: usize, k: usize, mut scope: Scope) -> Result<Scope, DockerfileError> {
        let g = self.graph;
        let def = &self.file.stages[k];
        for (j, c) in def.commands.iter().enumerate() {
            let srcs = &g.sources[k][j];
            let at = |e: String| DockerfileError::new(c.meta.line, e);
            match &c.cmd {
                Cmd::Env(pairs) => scope.apply_env(self.lex, pairs).map_err(at)?,
                Cmd::Arg(args) => {
                    let ctx = ArgCtx {
                        lex: self.lex,
                        build_args: self.facts.build_args,
                        globals: self.globals,
                    };
                    scope.apply_arg(&ctx, args).map_err(at)?;
                }
                Cmd::Expands(words) => {
                    for w in words {
                        super::env::expand(self.lex, w, &scope).map_err(at)?;
                    }
                }
                Cmd::Copy(cp) => {
                    let from = srcs.first().copied();
                    if let Some(src) = from {
                        self.check_defined(s, src, &c.meta, "copy from")?;
                    }
                    let ctx = from.map_or(Some(Ctx::Main), |src| self.context_of(src));
                    self.out.copy(self.lex, &scope, cp, ctx, &c.meta)?;
                }
                Cmd::Add(add) => self.out.add(self.lex, &scope, add, &c.meta)?,
                Cmd::Run(mounts) => {
                    for (m, &src) in mounts.iter().zip(srcs) {
                        let reads = self.out.mount(self.lex, &scope, &m.raw, &c.meta)?;
                        if let Some(reads) = reads {
                            self.check_defined(s, src, &c.meta, "mount from")?;
                            if let Some(ctx) = self.context_of(src) {
                                self.out.mount_source(ctx, reads, &c.meta);
                            }
                        }
                    }
                }
                Cmd::Onbuild | Cmd::Other => {}
            }
        }
        Ok(scope)
    }

    /// A stage can only use stages defined (and so built) before it.
    fn check_defined(
        &self,
        current: usize,
        src: usize,
        meta: &Meta,
        what: &str,
    ) -> Result<(), DockerfileError> {
        let g = self.graph;
        let st = &g.states[src];
        let done = match st.origin {
            Origin::External { .. } => true,
            Origin::Stage(_) => st.replaced_by.is_some() || self.scopes[src].is_some(),
        };
        if done {
            return Ok(());
        }
        let name = |i: usize| {
            g.states[i]
                .name
                .clone()
                .unwrap_or_else(|| format!("stage-{i}"))
        };
        Err(DockerfileError::new(
            meta.line,
            format!(
                "cannot {what} stage {:?}, it needs to be defined before current stage {:?}; move that stage above this one",
                name(src),
                name(current)
            ),
        ))
    }

    /// The named context a read from state `src` reads, if any (else it reads a stage,
    /// an image or scratch, which are not contexts).
    fn context_of(&self, src: usize) -> Option<Ctx> {
        let st = &self.graph.states[src];
        if let Some(nc) = &st.replaced_by {
            return Some(Ctx::Named(nc.clone()));
        }
        match (&st.origin, &st.resolved) {
            (Origin::External { .. }, Resolved::Named(nc)) => Some(Ctx::Named(nc.clone())),
            _ => None,
        }
    }
}

/// Images of reachable states, in line order.
fn images(file: &File, g: &Graph) -> Vec<ImageUse> {
    let mut out = Vec::new();
    for (i, st) in g.states.iter().enumerate() {
        let Resolved::Image(r) = &st.resolved else {
            continue;
        };
        if !g.reachable[i] || st.replaced_by.is_some() || st.base.is_some() {
            continue;
        }
        let (meta, kind, platform) = match &st.origin {
            Origin::Stage(k) => (
                file.stages[*k].meta.clone(),
                ImageUseKind::From,
                st.platform.as_ref().map(Platform::format_all),
            ),
            Origin::External { meta, kind } => (meta.clone(), *kind, None),
        };
        out.push(ImageUse {
            reference: st.base_name.clone(),
            normalized: r.normalized(),
            platform,
            line: meta.line,
            instruction: meta.instruction,
            kind,
        });
    }
    out.sort_by_key(|u| u.line);
    out
}

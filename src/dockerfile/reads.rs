//! What COPY, ADD and RUN --mount read from a context, collected per context.

use std::collections::BTreeMap;

use super::env::{expand, Scope, Word};
use super::error::DockerfileError;
use super::instructions::{Add, Copy, Meta};
use super::mount::{parse_mount, MountType};
use super::shell::Lex;
use super::text::{contains_wildcards, context_path};
use super::{Reads, SourceKind, SourcePath, WholeReason};

/// A context a read lands in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ctx {
    /// The main build context.
    Main,
    /// A named context, by its key.
    Named(String),
}

#[derive(Debug, Default)]
struct Acc {
    paths: Vec<SourcePath>,
    whole: Vec<WholeReason>,
}

impl Acc {
    fn into_reads(self) -> Reads {
        if !self.whole.is_empty() {
            return Reads::Whole(self.whole);
        }
        let mut paths = Vec::with_capacity(self.paths.len());
        for p in self.paths {
            if !paths.contains(&p) {
                paths.push(p);
            }
        }
        Reads::Paths(paths)
    }
}

/// Reads collected so far.
#[derive(Debug, Default)]
pub(crate) struct Collector {
    main: Acc,
    named: BTreeMap<String, Acc>,
}

fn err(meta: &Meta, message: String) -> DockerfileError {
    DockerfileError::new(meta.line, message)
}

/// A message for a source that depends on something unknown.
fn unknown_why(what: &str, why: &str) -> String {
    let is_name = !why.is_empty() && why.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if is_name {
        format!(
            "{what} uses ${why}, which no ARG or ENV of this stage sets (it may come from the base \
             image's ENV); declare it with ARG (and pass a build arg) or write the value"
        )
    } else {
        format!("{what} uses {why}, whose value cannot be known here")
    }
}

/// SCP-style (`user@host:path`) and `ssh://`/`git://` sources: git repositories for the
/// current frontend, plain paths for the older one.
fn is_git_ref(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("ssh://") || lower.starts_with("git://") {
        return true;
    }
    let Some((user, rest)) = s.split_once('@') else {
        return false;
    };
    let Some((host, _)) = rest.split_once(':') else {
        return false;
    };
    let ok_user = !user.is_empty()
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
    let ok_host = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c));
    ok_user && ok_host
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

impl Collector {
    fn acc(&mut self, ctx: &Ctx) -> &mut Acc {
        match ctx {
            Ctx::Main => &mut self.main,
            Ctx::Named(k) => self.named.entry(k.clone()).or_default(),
        }
    }

    /// Marks the whole of `ctx` as read.
    pub(crate) fn whole(&mut self, ctx: Ctx, meta: &Meta, why: String) {
        self.acc(&ctx).whole.push(WholeReason {
            line: meta.line,
            instruction: meta.instruction.clone(),
            why,
        });
    }

    fn path(
        &mut self,
        ctx: &Ctx,
        meta: &Meta,
        p: String,
        kind: SourceKind,
        excludes: &[String],
        sure: bool,
    ) {
        let must_exist = sure && !contains_wildcards(&p);
        self.acc(ctx).paths.push(SourcePath {
            path: p,
            excludes: excludes.to_vec(),
            kind,
            line: meta.line,
            instruction: meta.instruction.clone(),
            must_exist,
        });
    }

    /// One expanded COPY/ADD source.
    fn source(
        &mut self,
        ctx: &Ctx,
        w: Word,
        kind: SourceKind,
        excludes: &[String],
        meta: &Meta,
    ) -> Result<(), DockerfileError> {
        let s = match w {
            Word::Unknown(why) => {
                self.whole(ctx.clone(), meta, unknown_why("the source", &why));
                return Ok(());
            }
            Word::Known(s) => s,
        };
        if is_url(&s) {
            if kind == SourceKind::Copy {
                return Err(err(
                    meta,
                    format!("source can't be a URL for COPY ({s}); use ADD to download it"),
                ));
            }
            return Ok(());
        }
        match context_path(&s) {
            None => self.whole(
                ctx.clone(),
                meta,
                format!("the source {s:?} is the root of the context, so every file is copied"),
            ),
            Some(p) => self.path(ctx, meta, p, kind, excludes, !is_git_ref(&s)),
        }
        Ok(())
    }

    /// COPY: `ctx` is where its sources come from (`None`: a stage, image or scratch).
    pub(crate) fn copy(
        &mut self,
        lex: &Lex,
        scope: &Scope,
        c: &Copy,
        ctx: Option<Ctx>,
        meta: &Meta,
    ) -> Result<(), DockerfileError> {
        let ex = |w: &str| expand(lex, w, scope).map_err(|e| err(meta, e));
        for w in &c.owner_mode {
            ex(w)?;
        }
        let words = c
            .sources
            .iter()
            .map(|s| ex(s))
            .collect::<Result<Vec<_>, _>>()?;
        ex(&c.dest)?;
        if let Some(ctx) = ctx {
            for w in words {
                self.source(&ctx, w, SourceKind::Copy, &c.excludes, meta)?;
            }
        }
        Ok(())
    }

    /// ADD: always from the main context; URLs are downloaded, not read.
    pub(crate) fn add(
        &mut self,
        lex: &Lex,
        scope: &Scope,
        a: &Add,
        meta: &Meta,
    ) -> Result<(), DockerfileError> {
        let ex = |w: &str| expand(lex, w, scope).map_err(|e| err(meta, e));
        let mut checksum = None;
        for (i, w) in a.owner_mode.iter().enumerate() {
            let v = ex(w)?;
            if i == 2 {
                checksum = Some(v);
            }
        }
        let words = a
            .sources
            .iter()
            .map(|s| ex(s))
            .collect::<Result<Vec<_>, _>>()?;
        ex(&a.dest)?;
        if matches!(&checksum, Some(Word::Known(c)) if !c.is_empty()) {
            if words.len() != 1 {
                return Err(err(
                    meta,
                    "checksum can't be specified for multiple sources".into(),
                ));
            }
            if let Word::Known(s) = &words[0] {
                if !is_url(s) && !is_git_ref(s) {
                    return Err(err(meta, format!(
                        "checksum requires HTTP(S) or Git sources, not {s:?}; drop --checksum for local files"
                    )));
                }
            }
        }
        for w in words {
            self.source(&Ctx::Main, w, SourceKind::Add, &a.excludes, meta)?;
        }
        Ok(())
    }

    /// A RUN --mount: records what it reads from the main context and returns the source
    /// it reads from its `from` state, if it reads one (`None`: nothing more to read).
    pub(crate) fn mount(
        &mut self,
        lex: &Lex,
        scope: &Scope,
        raw: &str,
        meta: &Meta,
    ) -> Result<Option<Word>, DockerfileError> {
        let mut ex = |v: &str| match expand(lex, v, scope)? {
            Word::Known(s) => Ok(Some(s)),
            Word::Unknown(_) => Ok(None),
        };
        let m = parse_mount(raw, &mut ex).map_err(|e| err(meta, e))?;
        if matches!(m.typ, Some(MountType::Secret | MountType::Ssh)) {
            return Ok(None);
        }
        if m.target.as_deref() == Some("/") {
            return Err(err(
                meta,
                "invalid mount target \"/\"; mount somewhere below the root".into(),
            ));
        }
        let source = match &m.source {
            Some(s) => Word::Known(s.clone()),
            None => Word::Unknown(unknown_source(raw, lex, scope)),
        };
        let from_empty = m.from.as_deref() == Some("");
        if !from_empty || m.typ == Some(MountType::Cache) {
            return Ok(Some(source));
        }
        match (m.typ, source) {
            (None, _) => self.whole(Ctx::Main, meta, "the mount's type depends on a variable whose value cannot be known here, so it may bind the context".into()),
            (_, Word::Unknown(why)) => self.whole(Ctx::Main, meta, unknown_why("the mount source", &why)),
            (Some(t), Word::Known(s)) => match context_path(&s) {
                Some(p) => self.path(&Ctx::Main, meta, p, SourceKind::BindMount, &[], true),
                None if t == MountType::Tmpfs => self.whole(Ctx::Main, meta, "a tmpfs mount without from= names the context root as its source, so BuildKit transfers the whole context".into()),
                None => self.whole(Ctx::Main, meta, "the mount binds the root of the context; give source=<dir> to bind less".into()),
            },
        }
        self.older_mount(raw, &m.source, meta);
        Ok(None)
    }

    /// BuildKit v0.8 does not expand mount values: it reads the source as written.
    fn older_mount(&mut self, raw: &str, expanded: &Option<String>, meta: &Meta) {
        let mut literal = |v: &str| Ok(Some(v.to_string()));
        let Ok(old) = parse_mount(raw, &mut literal) else {
            return;
        };
        if old.from.as_deref() != Some("") || matches!(old.typ, Some(MountType::Cache)) {
            return;
        }
        let Some(src) = old.source else {
            return;
        };
        if Some(&src) == expanded.as_ref() {
            return;
        }
        match context_path(&src) {
            Some(p) => self.path(&Ctx::Main, meta, p, SourceKind::BindMount, &[], false),
            None => self.whole(Ctx::Main, meta, "the older frontend (Engine 20.10) does not expand mount values and binds the context root".into()),
        }
    }

    /// The source a mount reads from a named context.
    pub(crate) fn mount_source(&mut self, ctx: Ctx, source: Word, meta: &Meta) {
        match source {
            Word::Unknown(why) => self.whole(ctx, meta, unknown_why("the mount source", &why)),
            Word::Known(s) => match context_path(&s) {
                Some(p) => self.path(&ctx, meta, p, SourceKind::BindMount, &[], true),
                None => self.whole(
                    ctx,
                    meta,
                    "the mount binds the root of the named context".into(),
                ),
            },
        }
    }

    /// The collected reads: main, then per named context.
    pub(crate) fn finish(self) -> (Reads, BTreeMap<String, Reads>) {
        let named = self
            .named
            .into_iter()
            .map(|(k, a)| (k, a.into_reads()))
            .collect();
        (self.main.into_reads(), named)
    }
}

/// Which variable made a mount's source unknown (for the message).
fn unknown_source(raw: &str, lex: &Lex, scope: &Scope) -> String {
    for field in super::mount::csv_fields(raw).unwrap_or_default() {
        if let Some((k, v)) = field.split_once('=') {
            if matches!(k.to_ascii_lowercase().as_str(), "source" | "src") {
                if let Ok(Word::Unknown(why)) = expand(lex, v, scope) {
                    return why;
                }
            }
        }
    }
    "a variable".into()
}

//! Variable scopes: the global ARGs that FROM lines see, and each stage's ARG/ENV values.
//!
//! A stage built on an image also sees that image's ENV, which we cannot know: a variable
//! the stage did not set is then *unknown*, never guessed to be empty. Where the older
//! frontend (BuildKit v0.8, in Engine 20.10) would give a variable another value than the
//! current one, it is unknown too.

use std::collections::BTreeMap;

use super::error::Msg;
use super::shell::{process, Env, Lex, Lookup};

/// A variable's value in a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Val {
    /// Known value.
    Known(String),
    /// Depends on something we cannot see.
    Unknown,
}

/// An expanded word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Word {
    /// The text BuildKit will use.
    Known(String),
    /// The text depends on this unknown variable (or reason).
    Unknown(String),
}

impl Word {
    fn val(self) -> Val {
        match self {
            Word::Known(s) => Val::Known(s),
            Word::Unknown(_) => Val::Unknown,
        }
    }
}

/// Expands `word` in `env`; syntax errors are errors, unknown variables are `Word::Unknown`.
pub(crate) fn expand(lex: &Lex, word: &str, env: &dyn Env) -> Msg<Word> {
    let o = process(lex, word, env)?;
    Ok(match o.unknown {
        Some(why) => Word::Unknown(why),
        None => Word::Known(o.result),
    })
}

/// Global values: the automatic platform ARGs and the ARGs before the first FROM.
#[derive(Debug, Clone, Default)]
pub(crate) struct Globals(pub BTreeMap<String, String>);

impl Env for Globals {
    fn lookup(&self, name: &str) -> Lookup {
        match self.0.get(name) {
            Some(v) => Lookup::Set(v.clone()),
            None => Lookup::Unset,
        }
    }
}

/// What a stage's environment starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Root {
    /// `scratch`: only PATH (not on Windows) is set.
    Scratch {
        /// Windows target: no default PATH.
        windows: bool,
    },
    /// An image or named context whose ENV we cannot see.
    Opaque,
}

/// ARG names that never become environment variables.
const NON_ENV: &[&str] = &["BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"];

/// Automatic ARGs the older frontend does not define.
const NEW_AUTOMATIC: &[&str] = &["TARGETSTAGE", "BUILDOSVERSION", "TARGETOSVERSION"];

/// A stage's variables.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    vars: BTreeMap<String, Val>,
    root: Root,
}

impl Env for Scope {
    fn lookup(&self, name: &str) -> Lookup {
        match self.vars.get(name) {
            Some(Val::Known(v)) => Lookup::Set(v.clone()),
            Some(Val::Unknown) => Lookup::Unknown,
            None => match self.root {
                Root::Scratch { windows: false } if name == "PATH" => Lookup::Set(
                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                ),
                Root::Scratch { .. } => Lookup::Unset,
                Root::Opaque => Lookup::Unknown,
            },
        }
    }
}

/// What ARG needs besides the scope.
pub(crate) struct ArgCtx<'a> {
    /// The file's lexer.
    pub lex: &'a Lex,
    /// `--build-arg` values.
    pub build_args: &'a BTreeMap<String, String>,
    /// Global values.
    pub globals: &'a Globals,
}

impl Scope {
    /// A fresh scope on `root`.
    pub(crate) fn new(root: Root) -> Scope {
        Scope {
            vars: BTreeMap::new(),
            root,
        }
    }

    /// Some instruction may have set any variable (e.g. `ENV $NAME=...` with NAME unknown):
    /// every value so far becomes unknown; values set later are known again.
    fn poison(&mut self) {
        for v in self.vars.values_mut() {
            *v = Val::Unknown;
        }
        self.root = Root::Opaque;
    }

    /// ENV: every key and value expanded in the scope before the instruction.
    pub(crate) fn apply_env(&mut self, lex: &Lex, pairs: &[(String, String)]) -> Msg<()> {
        let mut expanded = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            expanded.push((expand(lex, k, self)?, expand(lex, v, self)?));
        }
        for (k, v) in expanded {
            match k {
                Word::Known(k) => {
                    self.vars.insert(k, v.val());
                }
                Word::Unknown(_) => self.poison(),
            }
        }
        Ok(())
    }

    /// ARG: the current frontend's rules, then the older frontend's, unknown where they differ.
    pub(crate) fn apply_arg(
        &mut self,
        ctx: &ArgCtx<'_>,
        args: &[(String, Option<String>)],
    ) -> Msg<()> {
        let before = self.clone();
        let mut current = Vec::with_capacity(args.len());
        for (key, default) in args {
            let value = if let Some(b) = ctx.build_args.get(key) {
                Some(Val::Known(b.clone()))
            } else if let Some(d) = default {
                Some(expand(ctx.lex, d, self)?.val())
            } else {
                ctx.globals.0.get(key).map(|g| Val::Known(g.clone()))
            };
            if let Some(v) = &value {
                if !NON_ENV.contains(&key.as_str()) {
                    self.vars.insert(key.clone(), v.clone());
                }
            }
            current.push((key.clone(), value));
        }
        if let Some(older) = before.older_arg(ctx, args) {
            for ((key, now), (old_key, then)) in current.iter().zip(older) {
                if old_key.as_deref() != Some(key.as_str()) {
                    self.poison();
                } else if *now != then {
                    self.vars.insert(key.clone(), Val::Unknown);
                }
            }
        }
        Ok(())
    }

    /// What BuildKit v0.8 gives each ARG: names and defaults expanded all at once, before
    /// the instruction. `None` when that frontend would fail (it then reads nothing).
    fn older_arg(
        &self,
        ctx: &ArgCtx<'_>,
        args: &[(String, Option<String>)],
    ) -> Option<Vec<(Option<String>, Option<Val>)>> {
        let mut out = Vec::with_capacity(args.len());
        for (key, default) in args {
            let name = match expand(ctx.lex, key, self).ok()? {
                Word::Known(k) => Some(k),
                Word::Unknown(_) => None,
            };
            let expanded = match default {
                Some(d) => Some(expand(ctx.lex, d, self).ok()?.val()),
                None => None,
            };
            let global = || {
                (!NEW_AUTOMATIC.contains(&key.as_str()))
                    .then(|| ctx.globals.0.get(key).map(|g| Val::Known(g.clone())))
                    .flatten()
            };
            let value = match ctx.build_args.get(key) {
                Some(b) => Some(Val::Known(b.clone())),
                None => expanded.or_else(global),
            };
            out.push((name, value));
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx<'a>(lex: &'a Lex, b: &'a BTreeMap<String, String>, g: &'a Globals) -> ArgCtx<'a> {
        ArgCtx {
            lex,
            build_args: b,
            globals: g,
        }
    }

    fn get(s: &Scope, k: &str) -> Lookup {
        s.lookup(k)
    }

    #[test]
    fn scratch_and_opaque_roots() {
        let s = Scope::new(Root::Scratch { windows: false });
        assert_eq!(get(&s, "NOPE"), Lookup::Unset);
        assert!(matches!(get(&s, "PATH"), Lookup::Set(_)));
        let s = Scope::new(Root::Opaque);
        assert_eq!(get(&s, "NOPE"), Lookup::Unknown);
    }

    #[test]
    fn arg_sources_in_order_of_precedence() {
        let lex = Lex::new('\\');
        let b = BTreeMap::from([("B".to_string(), "from-cli".to_string())]);
        let g = Globals(BTreeMap::from([
            ("G".to_string(), "global".to_string()),
            ("B".to_string(), "global-b".to_string()),
        ]));
        let mut s = Scope::new(Root::Opaque);
        s.apply_arg(
            &ctx(&lex, &b, &g),
            &[
                ("B".into(), Some("default".into())),
                ("G".into(), None),
                ("D".into(), Some("d-$G".into())),
                ("N".into(), None),
            ],
        )
        .unwrap();
        assert_eq!(get(&s, "B"), Lookup::Set("from-cli".into()));
        assert_eq!(get(&s, "G"), Lookup::Set("global".into()));
        assert_eq!(
            get(&s, "N"),
            Lookup::Unknown,
            "no value: the image's ENV shows through"
        );
        // D's default saw G set in the same ARG (current frontend) but not in v0.8: unknown.
        assert_eq!(get(&s, "D"), Lookup::Unknown);
    }

    #[test]
    fn env_expands_against_the_previous_scope() {
        let lex = Lex::new('\\');
        let mut s = Scope::new(Root::Scratch { windows: false });
        s.apply_env(
            &lex,
            &[("A".into(), "1".into()), ("B".into(), "x$A".into())],
        )
        .unwrap();
        assert_eq!(get(&s, "B"), Lookup::Set("x".into()));
        s.apply_env(&lex, &[("C".into(), "$A$B".into())]).unwrap();
        assert_eq!(get(&s, "C"), Lookup::Set("1x".into()));
        let mut o = Scope::new(Root::Scratch { windows: false });
        o.apply_env(&lex, &[("A".into(), "1".into())]).unwrap();
        o.vars.insert("K".into(), Val::Unknown);
        o.apply_env(&lex, &[("$K".into(), "v".into()), ("B".into(), "2".into())])
            .unwrap();
        assert_eq!(get(&o, "A"), Lookup::Unknown, "may have been overwritten");
        assert_eq!(get(&o, "ANY"), Lookup::Unknown, "may have been set");
        assert_eq!(
            get(&o, "B"),
            Lookup::Set("2".into()),
            "set after the unknown name"
        );
        let mut o = Scope::new(Root::Scratch { windows: false });
        o.apply_env(&lex, &[("X".into(), "$NOPE".into())]).unwrap();
        assert_eq!(get(&o, "X"), Lookup::Set(String::new()));
    }
}

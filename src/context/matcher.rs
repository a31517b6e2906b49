//! The ordered list of ignore patterns and the two matching algorithms Docker
//! has shipped (see [`Dialect`](super::Dialect)).
//!
//! Both agree on the common cases: the last matching line wins, a `!` line
//! re-includes, and a pattern that matches a directory excludes what is below
//! it. They differ in how "below" is decided and in when an excluded directory
//! is still walked, which is why both are kept exactly rather than "fixed".

use super::pattern::{Pattern, PatternError};
use super::Dialect;

/// Per-pattern memory of which patterns matched a directory or one of its
/// parents; BuildKit's matcher passes it from a directory to its children.
pub(crate) type ParentMatches = Vec<bool>;

/// Compiled ignore patterns in file order.
#[derive(Debug)]
pub(crate) struct Matcher {
    patterns: Vec<Pattern>,
    has_exceptions: bool,
    /// BuildKit prunes excluded directories only when every exception is a
    /// plain path (no glob characters once a trailing `/**` or `/*` is removed).
    only_prefix_exceptions: bool,
    /// The same test for the non-exception patterns, used when the list is an
    /// include filter (fsutil prunes unmatched directories only then).
    only_prefix_patterns: bool,
    /// First pattern whose translated regex does not compile.
    broken: Option<PatternError>,
    dialect: Dialect,
}

impl Matcher {
    /// Compiles pattern lines (as produced by `read_patterns`) in order.
    /// Errors carry the offending line.
    pub(crate) fn new(lines: &[String], dialect: Dialect) -> Result<Matcher, PatternError> {
        let mut patterns = Vec::with_capacity(lines.len());
        for line in lines {
            let parsed = Pattern::parse(line, dialect).map_err(|e| PatternError {
                pattern: line.clone(),
                reason: e.reason,
            })?;
            if let Some(p) = parsed {
                patterns.push(p);
            }
        }
        let has_exceptions = patterns.iter().any(|p| p.exclusion);
        let plain = |p: &&Pattern| !without_trailing_glob(&p.text).contains(GLOB_CHARS);
        let only_prefix_exceptions = patterns.iter().filter(|p| p.exclusion).all(|p| plain(&p));
        let only_prefix_patterns = patterns.iter().filter(|p| !p.exclusion).all(|p| plain(&p));
        let broken = patterns.iter().find_map(Pattern::broken);
        Ok(Matcher {
            patterns,
            has_exceptions,
            only_prefix_exceptions,
            only_prefix_patterns,
            broken,
            dialect,
        })
    }

    /// True when there are no patterns at all (nothing can be excluded).
    pub(crate) fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Decides whether `path` is excluded. `parent` is what the same call
    /// returned for the parent directory (`None` at the top level); the
    /// returned vector is to be passed to this directory's children.
    pub(crate) fn excluded(
        &self,
        path: &str,
        parent: Option<&ParentMatches>,
    ) -> Result<(bool, ParentMatches), PatternError> {
        match self.dialect {
            Dialect::Docker20 => Ok((self.excluded_docker20(path)?, Vec::new())),
            Dialect::BuildKit => self.excluded_buildkit(path, parent),
        }
    }

    /// Docker 20.10 (`fileutils.PatternMatcher.Matches`): a pattern of N
    /// components that does not match the path itself is tried against the
    /// path's first N components only, when the parent has at least N.
    fn excluded_docker20(&self, path: &str) -> Result<bool, PatternError> {
        // Docker 20.10 evaluates every pattern for every path, so a pattern
        // whose regex does not compile fails the build at the first path;
        // skipping patterns that cannot change the result is otherwise equivalent.
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        let parent = super::goclean::dir(path);
        let parent_depth = if parent == "." {
            0
        } else {
            parent.split('/').count()
        };
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            let mut hit = p.matches(path)?;
            if !hit && parent_depth > 0 && p.depth <= parent_depth {
                hit = p.matches(leading_components(parent, p.depth))?;
            }
            if hit {
                matched = !p.exclusion;
            }
        }
        Ok(matched)
    }

    /// Current BuildKit (`patternmatcher.MatchesUsingParentResults`): a
    /// pattern counts as matching if it matched the parent directory (as
    /// remembered) or matches the path itself. Patterns skipped because they
    /// could not change the result are remembered as not matching, exactly as
    /// upstream does.
    fn excluded_buildkit(
        &self,
        path: &str,
        parent: Option<&ParentMatches>,
    ) -> Result<(bool, ParentMatches), PatternError> {
        let parent = parent.filter(|p| !p.is_empty());
        let mut info = vec![false; self.patterns.len()];
        let mut matched = false;
        for (i, p) in self.patterns.iter().enumerate() {
            let mut hit = parent.is_some_and(|pm| pm[i]);
            if !hit {
                if p.exclusion != matched {
                    continue;
                }
                hit = p.matches(path)?;
                if !hit && parent.is_none() {
                    let dir = super::goclean::dir(path);
                    if dir != "." {
                        let depth = dir.split('/').count();
                        for n in 1..=depth {
                            if p.matches(leading_components(dir, n))? {
                                hit = true;
                                break;
                            }
                        }
                    }
                }
            }
            info[i] = hit;
            if hit {
                matched = !p.exclusion;
            }
        }
        Ok((matched, info))
    }

    /// Whether an excluded directory must still be walked because an
    /// exception might re-include something inside it.
    pub(crate) fn walk_excluded_dir(&self, dir: &str) -> bool {
        if !self.has_exceptions {
            return false;
        }
        if self.dialect == Dialect::BuildKit && !self.only_prefix_exceptions {
            return true;
        }
        let dir_slash = format!("{dir}/");
        self.patterns.iter().filter(|p| p.exclusion).any(|p| {
            let text = match self.dialect {
                Dialect::Docker20 => p.text.as_str(),
                Dialect::BuildKit => without_trailing_glob(&p.text),
            };
            format!("{text}/").starts_with(&dir_slash)
        })
    }

    /// Used as an include filter (current BuildKit only): whether a directory
    /// that is not itself included must still be walked because an include
    /// pattern may match something inside it (fsutil's `onlyPrefixIncludes` pruning).
    pub(crate) fn walk_unincluded_dir(&self, dir: &str) -> bool {
        if !self.only_prefix_patterns {
            return true;
        }
        let dir_slash = format!("{dir}/");
        self.patterns
            .iter()
            .filter(|p| !p.exclusion)
            .any(|p| format!("{}/", without_trailing_glob(&p.text)).starts_with(&dir_slash))
    }

    /// Whether an excluded directory that is walked appears in the context
    /// even when nothing below it is included. Docker 20.10 sends it (as an
    /// empty directory); BuildKit only sends it as a parent of included paths.
    pub(crate) fn keeps_walked_excluded_dir(&self) -> bool {
        self.dialect == Dialect::Docker20
    }
}

/// Characters that make a pattern more than a plain path for fsutil's pruning.
const GLOB_CHARS: [char; 6] = ['*', '[', ']', '?', '^', '\\'];

/// The first `n` `/`-separated components of `path` (all of it if it has fewer).
fn leading_components(path: &str, n: usize) -> &str {
    match path.match_indices('/').nth(n.saturating_sub(1)) {
        Some((i, _)) if n > 0 => &path[..i],
        _ => path,
    }
}

/// Pattern text with one trailing `/**` or `/*` removed (BuildKit's prefix test).
fn without_trailing_glob(text: &str) -> &str {
    let t = text.strip_suffix("/**").unwrap_or(text);
    t.strip_suffix("/*").unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(lines: &[&str], d: Dialect) -> Matcher {
        let lines: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        Matcher::new(&lines, d).unwrap()
    }

    /// Evaluates a path the way the walker does: every ancestor first.
    fn excluded(m: &Matcher, path: &str) -> bool {
        let mut info: Option<ParentMatches> = None;
        let parts: Vec<&str> = path.split('/').collect();
        let mut result = false;
        for n in 1..=parts.len() {
            let (ex, next) = m.excluded(&parts[..n].join("/"), info.as_ref()).unwrap();
            result = ex;
            info = Some(next);
        }
        result
    }

    const BOTH: [Dialect; 2] = [Dialect::Docker20, Dialect::BuildKit];

    #[test]
    fn last_matching_line_wins() {
        for d in BOTH {
            let m = matcher(&["*.md", "!README.md"], d);
            assert!(excluded(&m, "a.md"));
            assert!(!excluded(&m, "README.md"));
            let m = matcher(&["!README.md", "*.md"], d);
            assert!(excluded(&m, "README.md"));
        }
    }

    #[test]
    fn directory_pattern_excludes_contents() {
        for d in BOTH {
            let m = matcher(&["node_modules"], d);
            assert!(excluded(&m, "node_modules"));
            assert!(excluded(&m, "node_modules/x/y.js"));
            assert!(!excluded(&m, "src/node_modules"));
            assert!(!m.walk_excluded_dir("node_modules"));
        }
    }

    #[test]
    fn exception_inside_excluded_dir() {
        for d in BOTH {
            let m = matcher(&["docs", "!docs/keep.md"], d);
            assert!(excluded(&m, "docs/other.md"));
            assert!(!excluded(&m, "docs/keep.md"));
            assert!(m.walk_excluded_dir("docs"));
            assert!(!m.walk_excluded_dir("other"));
        }
    }

    #[test]
    fn exception_with_glob_walks_only_in_buildkit() {
        let m = matcher(&["*", "!**/keep"], Dialect::Docker20);
        assert!(!m.walk_excluded_dir("a"));
        let m = matcher(&["*", "!**/keep"], Dialect::BuildKit);
        assert!(m.walk_excluded_dir("a"));
        assert!(!excluded(&m, "a/keep"));
        assert!(excluded(&m, "a/other"));
    }

    #[test]
    fn trailing_glob_exception_counts_as_prefix_in_buildkit() {
        let m = matcher(&["a", "!a/b/**"], Dialect::BuildKit);
        assert!(m.walk_excluded_dir("a"));
        assert!(m.walk_excluded_dir("a/b"));
        assert!(!m.walk_excluded_dir("a/c"));
    }

    #[test]
    fn docker20_parent_test_uses_pattern_depth_only() {
        // `**/b` has two components, so for b/z/w only "b/z" is tried.
        let m = matcher(&["**/b", "!b/x/keep"], Dialect::Docker20);
        assert!(excluded(&m, "b"));
        assert!(!excluded(&m, "b/z"));
        assert!(!excluded(&m, "b/z/w"));
        // BuildKit remembers that `b` matched.
        let m = matcher(&["**/b", "!b/x/keep"], Dialect::BuildKit);
        assert!(excluded(&m, "b/z"));
        assert!(excluded(&m, "b/z/w"));
        assert!(!excluded(&m, "b/x/keep/k"));
    }

    #[test]
    fn docker20_reexclusion_after_exception() {
        // Observed with Docker 20.10: a, !a/b, a  => a/b kept, a/b/g excluded.
        let m = matcher(&["a", "!a/b", "a"], Dialect::Docker20);
        assert!(excluded(&m, "a"));
        assert!(excluded(&m, "a/b"));
        assert!(excluded(&m, "a/b/g"));
        assert!(excluded(&m, "a/h"));
        assert!(m.walk_excluded_dir("a"));
        assert!(m.walk_excluded_dir("a/b"));
        assert!(!m.walk_excluded_dir("a/b/c"));
    }

    #[test]
    fn buildkit_skipped_pattern_quirk() {
        // Upstream skips the third line for `a` (already excluded) and then
        // forgets it matched, so it does not re-exclude a/b/g.
        let m = matcher(&["a", "!a/b", "a"], Dialect::BuildKit);
        assert!(excluded(&m, "a"));
        assert!(!excluded(&m, "a/b"));
        assert!(!excluded(&m, "a/b/g"));
    }

    #[test]
    fn patterns_never_match_outside_or_root() {
        for d in BOTH {
            let m = matcher(&["/", ".", "..", "../a"], d);
            assert!(!excluded(&m, "a"));
            assert!(!excluded(&m, "x/y"));
        }
    }

    #[test]
    fn leading_slash_anchors_to_root() {
        for d in BOTH {
            let lines = super::super::ignorefile::read_patterns("/a\n");
            let m = Matcher::new(&lines, d).unwrap();
            assert!(excluded(&m, "a"));
            assert!(!excluded(&m, "x/a"));
        }
    }

    #[test]
    fn broken_regex_fails_even_when_never_consulted_in_docker20() {
        let m = matcher(&["!a/p?1)/x"], Dialect::Docker20);
        assert!(m.excluded("b", None).is_err());
        // BuildKit only evaluates an exception once something is excluded.
        let m = matcher(&["!a/p?1)/x"], Dialect::BuildKit);
        assert!(m.excluded("b", None).is_ok());
    }

    #[test]
    fn leading_components_of_paths() {
        assert_eq!(leading_components("a/b/c", 1), "a");
        assert_eq!(leading_components("a/b/c", 2), "a/b");
        assert_eq!(leading_components("a/b/c", 3), "a/b/c");
        assert_eq!(leading_components("a", 1), "a");
    }

    #[test]
    fn bare_exclamation_is_an_error() {
        for d in BOTH {
            assert!(Matcher::new(&["!".to_string()], d).is_err());
        }
    }
}

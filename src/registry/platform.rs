//! Platforms (`linux/arm64`) normalized and matched as containerd's `platforms.Only` does, which
//! is what BuildKit uses to pick an index entry, plus the Docker daemon's looser local-image check.

use std::fmt;

/// An OS/architecture/variant triple, normalized (`aarch64` -> `arm64`, arm64 `v8` -> no variant).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `amd64`, `arm64`, `arm`.
    pub architecture: String,
    /// e.g. `v7`; `None` when the architecture's default applies.
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `os/arch[/variant]` (e.g. `linux/arm64/v8`); the reason names the input.
    pub fn parse(input: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = input.trim().split('/').collect();
        let word = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        };
        if !matches!(parts.len(), 2 | 3) || !parts.iter().all(|p| word(p)) {
            return Err(format!(
                "platform {input:?} must be os/arch[/variant], such as \"linux/amd64\" or \"linux/arm64\""
            ));
        }
        Ok(Platform::new(parts[0], parts[1], parts.get(2).copied()))
    }

    /// A normalized platform from its parts (as in an image config or index entry).
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        let os = match os.to_ascii_lowercase().as_str() {
            "macos" => "darwin".to_string(),
            other => other.to_string(),
        };
        let (architecture, variant) = normalize_arch(architecture, variant.unwrap_or(""));
        Platform {
            os,
            architecture,
            variant: (!variant.is_empty()).then_some(variant),
        }
    }

    /// How well `candidate` serves this requested platform: `Some(0)` is an exact match, higher is a
    /// compatible fallback (arm64 runs arm/v8, amd64 runs 386, ...), `None` is no match.
    pub fn preference(&self, candidate: &Platform) -> Option<usize> {
        self.compatible().iter().position(|p| p == candidate)
    }

    /// True when the Docker daemon uses a local image of these raw config fields for this platform
    /// rather than going to a registry: containerd's match, or the same os/arch when the image
    /// names no variant (image configs often leave it out; moby's `OnlyPlatformWithFallback`).
    pub fn accepts_local(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        let image = Platform::new(os, architecture, variant);
        self.preference(&image).is_some()
            || (variant.unwrap_or("").is_empty()
                && image.os == self.os
                && image.architecture == self.architecture)
    }

    /// The ordered platforms `platforms.Only` accepts for this one, best first.
    fn compatible(&self) -> Vec<Platform> {
        let with =
            |arch: &str, variant: Option<String>| Platform::new(&self.os, arch, variant.as_deref());
        let mut out = vec![self.clone()];
        let version = |v: &Option<String>| {
            v.as_deref()
                .and_then(|v| v.trim_start_matches('v').parse::<u32>().ok())
        };
        match self.architecture.as_str() {
            "amd64" => {
                let n = version(&self.variant).unwrap_or(1);
                out.extend((1..n).rev().map(|k| with("amd64", Some(format!("v{k}")))));
                out.push(with("386", None));
            }
            "arm" => {
                let n = version(&self.variant).unwrap_or(0);
                out.extend((5..n).rev().map(|k| with("arm", Some(format!("v{k}")))));
            }
            "arm64" => {
                let variant = self.variant.clone().unwrap_or_else(|| "v8".into());
                let fallbacks = arm64_fallbacks(&variant);
                let known = !fallbacks.is_empty();
                out.extend(fallbacks.into_iter().map(|v| with("arm64", Some(v))));
                // arm64 CPUs of a known variant also run 32-bit arm/v8 and below.
                if known {
                    out.extend(with("arm", Some("v8".into())).compatible());
                }
            }
            _ => {}
        }
        out.dedup();
        out
    }
}

/// arm64 variants an arm64 `variant` CPU also runs, best first (v9.x runs v9.0.. and v8.(x+5)..v8.0).
fn arm64_fallbacks(variant: &str) -> Vec<String> {
    let Some((major, minor)) = variant
        .strip_prefix('v')
        .and_then(|v| {
            let (a, b) = v.split_once('.').unwrap_or((v, "0"));
            Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?))
        })
        .filter(|(major, minor)| matches!(major, 8 | 9) && *minor <= 9)
    else {
        return vec![];
    };
    let name = |ma: u32, mi: u32| {
        if mi == 0 {
            format!("v{ma}")
        } else {
            format!("v{ma}.{mi}")
        }
    };
    let mut out: Vec<String> = (0..=minor).rev().map(|m| name(major, m)).collect();
    if major == 9 {
        out.extend((0..=(minor + 5).min(9)).rev().map(|m| name(8, m)));
    }
    out
}

/// containerd's architecture/variant normalization.
fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let (arch, variant) = (arch.to_ascii_lowercase(), variant.to_ascii_lowercase());
    let (a, v): (&str, String) = match arch.as_str() {
        "i386" => ("386", String::new()),
        "x86_64" | "x86-64" | "amd64" => (
            "amd64",
            if variant == "v1" {
                String::new()
            } else {
                variant
            },
        ),
        "aarch64" | "arm64" => (
            "arm64",
            match variant.as_str() {
                "8" | "v8" | "v8.0" => String::new(),
                "9" | "9.0" | "v9.0" => "v9".into(),
                _ => variant,
            },
        ),
        "armhf" => ("arm", "v7".into()),
        "armel" => ("arm", "v6".into()),
        "arm" => (
            "arm",
            match variant.as_str() {
                "" | "7" => "v7".into(),
                "5" | "6" | "8" => format!("v{variant}"),
                _ => variant,
            },
        ),
        _ => return (arch, variant),
    };
    (a.to_string(), v)
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn parses_and_normalizes() {
        assert_eq!(p("linux/arm64/v8"), p("linux/arm64"));
        assert_eq!(p("linux/aarch64"), p("linux/arm64"));
        assert_eq!(p("linux/arm64/v8.0"), p("linux/arm64"));
        assert_eq!(p("linux/arm64/9"), p("linux/arm64/v9"));
        assert_eq!(p("linux/x86_64"), p("linux/amd64"));
        assert_eq!(p("linux/amd64/v1"), p("linux/amd64"));
        assert_eq!(p("linux/arm"), p("linux/arm/v7"));
        assert_eq!(p("linux/armhf"), p("linux/arm/v7"));
        assert_eq!(p("linux/armel"), p("linux/arm/v6"));
        assert_eq!(p("Linux/AMD64").to_string(), "linux/amd64");
        assert_eq!(p("linux/arm64/v8").to_string(), "linux/arm64");
        assert_eq!(p("linux/arm/v7").to_string(), "linux/arm/v7");
        for bad in [
            "linux",
            "linux/",
            "/amd64",
            "linux/amd64/v2/x",
            "linux/am d64",
            "",
        ] {
            let e = Platform::parse(bad).expect_err(bad);
            assert!(e.contains("os/arch"), "{e}");
        }
    }

    #[test]
    fn arm64_matches_v8_or_no_variant_and_prefers_them() {
        let want = p("linux/arm64");
        let entry = |arch: &str, v: Option<&str>| Platform::new("linux", arch, v);
        assert_eq!(want.preference(&entry("arm64", Some("v8"))), Some(0));
        assert_eq!(want.preference(&entry("arm64", None)), Some(0));
        assert_eq!(
            p("linux/arm64/v8").preference(&entry("arm64", None)),
            Some(0)
        );
        assert_eq!(want.preference(&entry("amd64", None)), None);
        assert_eq!(want.preference(&entry("arm64", Some("v9"))), None);
        assert_eq!(want.preference(&entry("arm64", Some("v8.2"))), None);
        assert_eq!(
            Platform::new("windows", "arm64", None).preference(&entry("arm64", None)),
            None
        );
        // 32-bit arm images run on arm64, but only as fallbacks.
        let arm7 = want
            .preference(&entry("arm", Some("v7")))
            .expect("arm/v7 runs on arm64");
        let arm8 = want
            .preference(&entry("arm", Some("v8")))
            .expect("arm/v8 runs on arm64");
        assert!(0 < arm8 && arm8 < arm7);
    }

    #[test]
    fn fallback_orders() {
        let v9 = p("linux/arm64/v9");
        let r = |s: &str| v9.preference(&p(s)).unwrap_or_else(|| panic!("{s} on v9"));
        assert!(r("linux/arm64/v9") < r("linux/arm64/v8.5"));
        assert!(r("linux/arm64/v8.5") < r("linux/arm64/v8"));
        assert!(v9.preference(&p("linux/arm64/v8.6")).is_none());
        let amd = p("linux/amd64");
        assert_eq!(amd.preference(&p("linux/amd64")), Some(0));
        assert_eq!(amd.preference(&p("linux/386")), Some(1));
        assert!(amd.preference(&p("linux/amd64/v2")).is_none());
        let v3 = p("linux/amd64/v3");
        assert!(v3.preference(&p("linux/amd64/v2")) < v3.preference(&p("linux/amd64")));
        let arm6 = p("linux/arm/v6");
        assert!(arm6.preference(&p("linux/arm/v5")).is_some());
        assert!(arm6.preference(&p("linux/arm/v7")).is_none());
        // An unknown arm64 variant still matches itself (older BuildKit matched exactly).
        let odd = p("linux/arm64/v8.10");
        assert_eq!(odd.preference(&odd), Some(0));
        assert!(odd.preference(&p("linux/arm/v7")).is_none());
    }

    #[test]
    fn local_images_without_variant_fall_back_to_os_arch() {
        let arm6 = p("linux/arm/v6");
        // An arm image config without a variant normalizes to v7, but the daemon still uses it.
        assert!(arm6.accepts_local("linux", "arm", None));
        assert!(!arm6.accepts_local("linux", "arm", Some("v7")));
        assert!(p("linux/arm64").accepts_local("linux", "arm64", Some("v8")));
        assert!(p("linux/arm64").accepts_local("linux", "aarch64", None));
        assert!(!p("linux/arm64").accepts_local("linux", "amd64", None));
        assert!(!p("linux/amd64").accepts_local("windows", "amd64", None));
    }
}

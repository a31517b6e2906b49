//! Platform specifiers (`linux/arm64`, `linux/arm/v7`, `arm64`) parsed and normalized as
//! containerd's `platforms` package does, for TARGETPLATFORM, TARGETARCH, ... and FROM
//! `--platform`.

use super::error::Msg;

/// A normalized platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Platform {
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// OS version from `os(version)`, usually empty.
    pub os_version: String,
    /// Architecture, e.g. `arm64`.
    pub arch: String,
    /// Variant, e.g. `v7`; usually empty.
    pub variant: String,
}

const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "windows",
    "zos",
];

const KNOWN_ARCH: &[&str] = &[
    "386",
    "amd64",
    "amd64p32",
    "arm",
    "armbe",
    "arm64",
    "arm64be",
    "ppc64",
    "ppc64le",
    "loong64",
    "mips",
    "mipsle",
    "mips64",
    "mips64le",
    "mips64p32",
    "mips64p32le",
    "ppc",
    "riscv",
    "riscv64",
    "s390",
    "s390x",
    "sparc",
    "sparc64",
    "wasm",
];

fn valid_component(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

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
        other => return (other.to_string(), variant),
    };
    (a.to_string(), v)
}

/// Parses `specifier` and normalizes it (`platforms.Normalize(platforms.Parse(s))`); a
/// single OS word takes `default_arch`, a single architecture word takes `linux`.
pub(crate) fn parse(specifier: &str, default_arch: &str) -> Msg<Platform> {
    let bad = |why: &str| {
        format!("invalid platform {specifier:?}: {why}; write it as os/arch[/variant], e.g. linux/arm64")
    };
    if specifier.contains('*') {
        return Err(bad("wildcards are not supported"));
    }
    let parts: Vec<&str> = specifier.splitn(4, '/').collect();
    let (os_word, os_version) = match parts[0].split_once('(') {
        Some((os, rest)) => match rest.strip_suffix(')') {
            Some(v) => (os, v.to_string()),
            None => return Err(bad("unbalanced parenthesis in the OS version")),
        },
        None => (parts[0], String::new()),
    };
    if !valid_component(os_word) || parts[1..].iter().any(|p| !valid_component(p)) {
        return Err(bad(
            "each part may only hold letters, digits, '_', '.' and '-'",
        ));
    }
    let mut os = os_word.to_ascii_lowercase();
    if os == "macos" {
        os = "darwin".into();
    }
    let (arch, variant) = match parts.len() {
        1 if KNOWN_OS.contains(&os.as_str()) => (default_arch.to_string(), String::new()),
        1 => {
            let (a, v) = normalize_arch(parts[0], "");
            if !KNOWN_ARCH.contains(&a.as_str()) {
                return Err(bad("unknown operating system or architecture"));
            }
            os = "linux".into();
            (a, v)
        }
        2 => normalize_arch(parts[1], ""),
        3 => {
            let (a, v) = normalize_arch(parts[1], parts[2]);
            let v = if a == "arm64" && v.is_empty() {
                "v8".into()
            } else {
                v
            };
            (a, v)
        }
        _ => return Err(bad("too many '/' parts")),
    };
    // Parse leaves a few forms unnormalized; Normalize (applied by the frontend) fixes them.
    let (arch, variant) = normalize_arch(&arch, &variant);
    Ok(Platform {
        os,
        os_version,
        arch,
        variant,
    })
}

impl Platform {
    /// `platforms.Format`: os/arch[/variant].
    pub(crate) fn format(&self) -> String {
        let mut s = format!("{}/{}", self.os, self.arch);
        if !self.variant.is_empty() {
            s.push('/');
            s.push_str(&self.variant);
        }
        s
    }

    /// `platforms.FormatAll`: like `format` with `(os version)` when there is one.
    pub(crate) fn format_all(&self) -> String {
        if self.os_version.is_empty() {
            return self.format();
        }
        let mut p = self.clone();
        p.os = format!("{}({})", self.os, self.os_version);
        p.format()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> String {
        parse(s, "amd64").unwrap().format_all()
    }

    #[test]
    fn normalization() {
        assert_eq!(f("linux/arm64"), "linux/arm64");
        assert_eq!(f("linux/aarch64"), "linux/arm64");
        assert_eq!(f("linux/arm64/v8"), "linux/arm64");
        assert_eq!(f("linux/arm"), "linux/arm/v7");
        assert_eq!(f("linux/arm/v6"), "linux/arm/v6");
        assert_eq!(f("Linux/x86_64"), "linux/amd64");
        assert_eq!(f("linux/386"), "linux/386");
        assert_eq!(f("arm64"), "linux/arm64");
        assert_eq!(f("linux"), "linux/amd64");
        assert_eq!(f("windows(10.0.17763)/amd64"), "windows(10.0.17763)/amd64");
        let p = parse("linux/arm/v7", "amd64").unwrap();
        assert_eq!((p.arch.as_str(), p.variant.as_str()), ("arm", "v7"));
    }

    #[test]
    fn invalid_platforms() {
        for bad in ["", "linux/", "linux/*", "foo", "linux/a b", "a/b/c/d"] {
            assert!(parse(bad, "amd64").is_err(), "{bad:?}");
        }
    }
}

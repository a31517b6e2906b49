//! HEALTHCHECK's checks (they do not read anything, but BuildKit rejects bad ones).

use super::error::Msg;
use super::flags::{self, Kind};
use super::nodes::Node;

const FLAGS: &[(&str, Kind)] = &[
    ("interval", Kind::Str),
    ("timeout", Kind::Str),
    ("start-period", Kind::Str),
    ("start-interval", Kind::Str),
    ("retries", Kind::Str),
];

/// Validates a HEALTHCHECK node the way `parseHealthcheck` does.
pub(crate) fn check(node: &Node) -> Msg<()> {
    let Some(typ) = node.args.first() else {
        return Err("HEALTHCHECK requires at least one argument".into());
    };
    let typ = typ.to_ascii_uppercase();
    let rest = &node.args[1..];
    if typ == "NONE" {
        if !rest.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".into());
        }
        return Ok(());
    }
    let f = flags::parse("HEALTHCHECK", &node.flags, FLAGS)?;
    if typ != "CMD" {
        return Err(format!("Unknown type {typ:?} in HEALTHCHECK (try CMD)"));
    }
    if rest.is_empty() || (!node.json && rest.join(" ").is_empty()) {
        return Err("Missing command after HEALTHCHECK CMD".into());
    }
    for name in ["interval", "timeout", "start-period", "start-interval"] {
        if let Some(v) = f.string(name).filter(|v| !v.is_empty()) {
            let d = go_duration(v).ok_or_else(|| format!("time: invalid duration {v:?}"))?;
            if d != 0.0 && d < 1e6 {
                return Err(format!("Interval {name:?} cannot be less than 1ms"));
            }
        }
    }
    if let Some(v) = f.string("retries").filter(|v| !v.is_empty()) {
        let n: i32 = v
            .parse()
            .map_err(|_| format!("invalid --retries value {v:?}; give a whole number"))?;
        if n < 0 {
            return Err(format!("--retries cannot be negative ({n})"));
        }
    }
    Ok(())
}

/// Go's `time.ParseDuration`, in nanoseconds.
fn go_duration(s: &str) -> Option<f64> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0.0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_end];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = if num.starts_with('.') {
            format!("0{num}").parse().ok()?
        } else {
            num.trim_end_matches('.').parse().ok()?
        };
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += value * unit;
    }
    Some(if neg { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(go_duration("30s"), Some(30e9));
        assert_eq!(go_duration("1m30s"), Some(90e9));
        assert_eq!(go_duration("1.5h"), Some(5400e9));
        assert_eq!(go_duration("0"), Some(0.0));
        assert_eq!(go_duration("10"), None);
        assert_eq!(go_duration("5 s"), None);
        assert_eq!(go_duration(""), None);
    }
}

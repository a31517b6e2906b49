//! Masks known secret values in any text that leaves the provider: build events, status lines,
//! errors. The local engine and the resources share this one mechanism.

/// What a secret value is replaced with.
pub const MASK: &str = "***";

/// A set of secret values to mask, longest first so overlapping values are fully hidden.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    values: Vec<String>,
}

impl Redactor {
    /// Masks every non-empty value given.
    pub fn new<'a>(values: impl IntoIterator<Item = &'a String>) -> Redactor {
        let mut values: Vec<String> = values
            .into_iter()
            .filter(|v| !v.is_empty())
            .cloned()
            .collect();
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.dedup();
        Redactor { values }
    }

    /// `text` with each secret value replaced by [`MASK`].
    pub fn apply(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), MASK);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_longest_first() {
        let a = "abc".to_string();
        let b = "abcdef".to_string();
        let r = Redactor::new([&a, &b, &a]);
        assert_eq!(r.apply("x abcdef y abc"), "x *** y ***");
    }
}

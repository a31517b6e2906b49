//! Content digests (`sha256:<hex>`): parsed once, verified against the bytes they name.

use std::fmt;

use sha2::Digest as _;

/// A validated content digest, `sha256:<64 hex>` or `sha512:<128 hex>` (lowercase hex).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// Parses `algorithm:hex`; the reason says what is wrong (for messages naming the input).
    pub fn parse(input: &str) -> Result<Digest, String> {
        let (alg, hex) = input
            .split_once(':')
            .ok_or_else(|| format!("digest {input:?} must look like sha256:<64 hex digits>"))?;
        let want = match alg {
            "sha256" => 64,
            "sha512" => 128,
            _ => {
                return Err(format!(
                    "digest {input:?} uses the unsupported algorithm {alg:?} (use sha256 or sha512)"
                ))
            }
        };
        let hex_ok = hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if hex.len() != want || !hex_ok {
            return Err(format!(
                "digest {input:?} must have exactly {want} lowercase hex digits after {alg}:"
            ));
        }
        Ok(Digest(input.to_string()))
    }

    /// The sha256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        Digest(format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(bytes))
        ))
    }

    /// True when `bytes` hash to this digest.
    pub fn verifies(&self, bytes: &[u8]) -> bool {
        let hex = match self.algorithm() {
            "sha256" => hex::encode(sha2::Sha256::digest(bytes)),
            _ => hex::encode(sha2::Sha512::digest(bytes)),
        };
        hex == self.hex()
    }

    /// `sha256` or `sha512`.
    pub fn algorithm(&self) -> &str {
        self.0.split_once(':').map(|(a, _)| a).unwrap_or_default()
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        self.0.split_once(':').map(|(_, h)| h).unwrap_or_default()
    }

    /// The digest as `algorithm:hex`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_verifies() {
        let d = Digest::sha256_of(b"hello");
        assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
        assert!(d.verifies(b"hello"));
        assert!(!d.verifies(b"hello!"));
        assert_eq!(d.algorithm(), "sha256");
        assert_eq!(d.hex().len(), 64);
    }

    #[test]
    fn rejects_bad_digests() {
        let hex = "a".repeat(64);
        assert!(Digest::parse(&format!("sha256:{hex}")).is_ok());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(Digest::parse(&format!("sha256:{}", "a".repeat(63))).is_err());
        assert!(Digest::parse(&format!("md5:{hex}")).is_err());
        assert!(Digest::parse(&hex).is_err());
        assert!(Digest::parse(&format!("sha512:{}", "0".repeat(128))).is_ok());
    }
}

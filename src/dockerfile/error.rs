//! The one error type of the Dockerfile analysis: where BuildKit itself would refuse the file.

use std::fmt;

/// A Dockerfile BuildKit would reject, with the line at fault and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerfileError {
    /// 1-based line of the offending instruction; 0 when the whole file (or a build fact) is at fault.
    pub line: usize,
    /// What is wrong and what to change.
    pub message: String,
}

impl DockerfileError {
    /// An error at `line` (0 = whole file).
    pub(crate) fn new(line: usize, message: impl Into<String>) -> DockerfileError {
        DockerfileError {
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for DockerfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for DockerfileError {}

/// Result of the parsing steps before a line number is known: the message only.
pub(crate) type Msg<T> = Result<T, String>;

/// Attaches `line` to a message-only error.
pub(crate) fn at<T>(line: usize, r: Msg<T>) -> Result<T, DockerfileError> {
    r.map_err(|m| DockerfileError::new(line, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_line() {
        let e = DockerfileError::new(3, "unknown instruction: FORM");
        assert_eq!(e.to_string(), "line 3: unknown instruction: FORM");
        let boxed: Box<dyn std::error::Error> = Box::new(e);
        assert!(boxed.to_string().starts_with("line 3"));
    }
}

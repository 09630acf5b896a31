//! Bearer tokens: a projected ServiceAccount token (audience `tlsmint`) read
//! from a file, or given directly (the CSI driver gets it from kubelet; the
//! dev server prints one).
//!
//! Owns: reading, holding and presenting tokens. Must not: ever show a
//! token's text in `Debug`, `Display` or an error message.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use zeroize::Zeroizing;

/// Default path of a projected ServiceAccount token for the `tlsmint` audience
/// (the agent's pod spec mounts it there).
pub const DEFAULT_TOKEN_PATH: &str = "/var/run/secrets/tlsmint/token";

/// Largest token accepted (Kubernetes tokens are a few KiB).
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// A checked bearer token, held in tlsmint's one redacted-secret type
/// ([`SecretString`]): zeroed on drop, `Debug` shows nothing of it, no
/// `Display`. Read it with [`ExposeSecret::expose_secret`].
#[derive(Clone, Debug)]
pub struct Token(SecretString);

impl ExposeSecret<str> for Token {
    fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

/// Why a token could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token file could not be read.
    #[error("reading the token file {path} failed: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error (it never contains the file's contents).
        source: std::io::Error,
    },
    /// The file or string held no token.
    #[error("the token from {origin} is empty")]
    Empty {
        /// Where it came from (a path or "the argument").
        origin: String,
    },
    /// The token is larger than [`MAX_TOKEN_BYTES`].
    #[error("the token from {origin} is {size} bytes; at most {MAX_TOKEN_BYTES} are accepted")]
    TooLarge {
        /// Where it came from.
        origin: String,
        /// Its size.
        size: usize,
    },
    /// The token has characters that cannot go into an HTTP header.
    #[error("the token from {origin} contains characters that are not allowed in a header")]
    NotHeaderSafe {
        /// Where it came from.
        origin: String,
    },
}

impl Token {
    /// A token from a string (surrounding whitespace removed).
    pub fn new(text: impl Into<String>) -> Result<Self, TokenError> {
        Self::checked(Zeroizing::new(text.into()), "the argument")
    }

    /// Reads a token file, such as a projected ServiceAccount token.
    pub fn from_file(path: &Path) -> Result<Self, TokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::checked(Zeroizing::new(text), &path.display().to_string())
    }

    fn checked(text: Zeroizing<String>, origin: &str) -> Result<Self, TokenError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(TokenError::Empty {
                origin: origin.to_owned(),
            });
        }
        if trimmed.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge {
                origin: origin.to_owned(),
                size: trimmed.len(),
            });
        }
        if !trimmed.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::NotHeaderSafe {
                origin: origin.to_owned(),
            });
        }
        Ok(Token(SecretString::from(trimmed)))
    }

    /// The `authorization: Bearer <token>` metadata value, marked sensitive
    /// (so HTTP/2 never indexes it in HPACK tables).
    pub fn bearer(&self) -> Result<AsciiMetadataValue, TokenError> {
        let mut value: AsciiMetadataValue =
            MetadataValue::try_from(format!("Bearer {}", self.0.expose_secret())).map_err(
                |_| TokenError::NotHeaderSafe {
                    origin: "the token".into(),
                },
            )?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// Where a client gets its token for each call.
#[derive(Clone, Debug)]
pub enum TokenSource {
    /// The same token for every call.
    Static(Token),
    /// Re-read for every call: kubelet rotates projected tokens in place.
    File(PathBuf),
}

impl TokenSource {
    /// The token to use now.
    pub fn current(&self) -> Result<Token, TokenError> {
        match self {
            TokenSource::Static(token) => Ok(token.clone()),
            TokenSource::File(path) => Token::from_file(path),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_errors_never_show_the_token() {
        let token = Token::new("  canary-abc123\n").unwrap();
        assert_eq!(token.expose_secret(), "canary-abc123");
        assert!(!format!("{token:?}").contains("canary"));
        let err = Token::new("canary with space").unwrap_err().to_string();
        assert!(!err.contains("canary"), "{err}");
    }

    #[test]
    fn reads_a_token_file_and_rejects_empty_ones() {
        let dir = std::env::temp_dir().join(format!("tlsmint-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "eyJhbGciOi.x.y\n").unwrap();
        let source = TokenSource::File(path.clone());
        assert_eq!(source.current().unwrap().expose_secret(), "eyJhbGciOi.x.y");
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(source.current(), Err(TokenError::Empty { .. })));
        let missing = TokenSource::File(dir.join("missing"));
        assert!(matches!(missing.current(), Err(TokenError::Read { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bearer_header_is_sensitive() {
        let value = Token::new("abc").unwrap().bearer().unwrap();
        assert!(value.is_sensitive());
        assert_eq!(value.to_str().unwrap(), "Bearer abc");
    }
}

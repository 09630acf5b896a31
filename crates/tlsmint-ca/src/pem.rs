//! PEM in and out: the only place in tlsmint that reads or writes PEM text.
//! Certificates, chains, CSRs, CRLs and private keys all pass through here.

use pem::{EncodeConfig, LineEnding, Pem};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// PEM label of a certificate.
pub const CERTIFICATE: &str = "CERTIFICATE";
/// PEM label of a PKCS#10 request.
pub const CERTIFICATE_REQUEST: &str = "CERTIFICATE REQUEST";
/// PEM label of a CRL.
pub const X509_CRL: &str = "X509 CRL";

const PRIVATE_KEY_LABELS: [&str; 3] = ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"];

/// Encodes DER as PEM with `\n` line endings.
pub fn encode(label: &str, der: &[u8]) -> String {
    pem::encode_config(
        &Pem::new(label, der.to_vec()),
        EncodeConfig::new().set_line_ending(LineEnding::LF),
    )
}

/// Encodes one certificate.
pub fn encode_certificate(der: &[u8]) -> String {
    encode(CERTIFICATE, der)
}

/// Encodes several certificates one after the other (leaf first).
pub fn encode_certificates<'a>(ders: impl IntoIterator<Item = &'a [u8]>) -> String {
    ders.into_iter().map(encode_certificate).collect()
}

/// Decodes every `CERTIFICATE` block, in order. Other blocks are an error,
/// so a key pasted into a certificate field is refused (and never echoed).
pub fn decode_certificates(text: &str) -> Result<Vec<Vec<u8>>> {
    let blocks = parse_many("certificate", text)?;
    let mut out = Vec::with_capacity(blocks.len());
    for block in blocks {
        if block.tag() != CERTIFICATE {
            return Err(Error::Pem {
                what: "certificate",
                reason: format!(
                    "found a \"{}\" block where only CERTIFICATE is allowed",
                    block.tag()
                ),
            });
        }
        out.push(block.into_contents());
    }
    if out.is_empty() {
        return Err(Error::Pem {
            what: "certificate",
            reason: "no CERTIFICATE block found".into(),
        });
    }
    Ok(out)
}

/// Decodes exactly one certificate.
pub fn decode_certificate(text: &str) -> Result<Vec<u8>> {
    let mut certs = decode_certificates(text)?;
    if certs.len() != 1 {
        return Err(Error::Pem {
            what: "certificate",
            reason: format!("expected one CERTIFICATE block, found {}", certs.len()),
        });
    }
    Ok(certs.remove(0))
}

/// Decodes a CSR (`CERTIFICATE REQUEST` or the older `NEW CERTIFICATE REQUEST`).
/// Only whitespace may follow the block: a request is one thing, and text
/// smuggled after it is refused rather than silently dropped.
pub fn decode_csr(text: &str) -> Result<Vec<u8>> {
    let block = parse_one("CSR", text)?;
    if !after_last_block(text).trim_ascii().is_empty() {
        return Err(Error::Pem {
            what: "CSR",
            reason: "text follows the END line; only whitespace may follow the PEM block".into(),
        });
    }
    match block.tag() {
        CERTIFICATE_REQUEST | "NEW CERTIFICATE REQUEST" => Ok(block.into_contents()),
        other => Err(Error::Pem {
            what: "CSR",
            reason: format!("found a \"{other}\" block; expected CERTIFICATE REQUEST"),
        }),
    }
}

/// Decodes a private key block; the result is zeroed on drop.
pub fn decode_private_key(text: &str) -> Result<Zeroizing<Vec<u8>>> {
    // Parse errors from the pem crate never include the input itself.
    let block = parse_one("private key", text)?;
    if !PRIVATE_KEY_LABELS.contains(&block.tag()) {
        return Err(Error::Pem {
            what: "private key",
            reason: format!(
                "found a \"{}\" block; expected PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY",
                block.tag()
            ),
        });
    }
    Ok(Zeroizing::new(block.into_contents()))
}

/// What follows the closing dashes of the last `-----END ...-----` line.
fn after_last_block(text: &str) -> &str {
    const END: &str = "-----END ";
    let Some(start) = text.rfind(END) else {
        return "";
    };
    let tail = &text[start + END.len()..];
    match tail.find("-----") {
        Some(close) => &tail[close + "-----".len()..],
        None => tail,
    }
}

fn parse_one(what: &'static str, text: &str) -> Result<Pem> {
    let mut blocks = parse_many(what, text)?;
    match blocks.len() {
        1 => Ok(blocks.remove(0)),
        0 => Err(Error::Pem {
            what,
            reason: "no PEM block found".into(),
        }),
        n => Err(Error::Pem {
            what,
            reason: format!("expected one PEM block, found {n}"),
        }),
    }
}

fn parse_many(what: &'static str, text: &str) -> Result<Vec<Pem>> {
    pem::parse_many(text).map_err(|source| Error::PemSyntax { what, source })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_chain_in_order() {
        let text = encode_certificates([&b"one"[..], &b"two"[..]]);
        assert_eq!(
            decode_certificates(&text).unwrap(),
            vec![b"one".to_vec(), b"two".to_vec()]
        );
        assert!(decode_certificate(&text).is_err());
    }

    #[test]
    fn refuses_a_key_where_a_certificate_belongs() {
        let text = encode("PRIVATE KEY", b"secret-bytes");
        let err = decode_certificates(&text).unwrap_err().to_string();
        assert!(err.contains("PRIVATE KEY"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn refuses_empty_and_garbage_input() {
        assert!(decode_certificates("").is_err());
        assert!(decode_csr("hello").is_err());
        assert!(decode_private_key(&encode(CERTIFICATE, b"x")).is_err());
    }
}

//! Certificate serial numbers: random, positive, 16 bytes long (126 bits of
//! entropy), well inside RFC 5280's 20-octet limit and above the CA/Browser
//! Forum's 64-bit minimum. Shown in Vault's colon-separated hex form.

use std::fmt;

use rand::RngCore;

/// A serial number as its big-endian magnitude bytes (no sign byte).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(Vec<u8>);

/// Length of generated serials in bytes.
pub const SERIAL_LEN: usize = 16;

impl Serial {
    /// A fresh random serial. The first byte has its top bit clear (so the
    /// DER INTEGER is positive without a padding byte) and its next bit set (so
    /// the length is always exactly [`SERIAL_LEN`] bytes).
    pub fn random() -> Self {
        let mut bytes = [0u8; SERIAL_LEN];
        rand::rng().fill_bytes(&mut bytes);
        bytes[0] = (bytes[0] & 0x3f) | 0x40;
        Serial(bytes.to_vec())
    }

    /// A serial from magnitude bytes as found in a certificate; leading
    /// zeros are dropped.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        let trimmed = &bytes[skip.min(bytes.len().saturating_sub(1))..];
        Serial(trimmed.to_vec())
    }

    /// Parses colon-hex (`7a:0b:...`, Vault's form), dash-hex or plain hex.
    pub fn parse(text: &str) -> Option<Self> {
        let hex: String = text
            .trim()
            .chars()
            .filter(|c| *c != ':' && *c != '-')
            .collect();
        if hex.is_empty() || hex.len() > 40 || !hex.len().is_multiple_of(2) {
            return None;
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        Some(Serial::from_bytes(&bytes))
    }

    /// Magnitude bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Lower-case hex, colon-separated (Vault's `serial_number`).
    pub fn to_colon_hex(&self) -> String {
        self.0
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    }

    /// Lower-case hex without separators (for object names and labels).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub(crate) fn to_rcgen(&self) -> rcgen::SerialNumber {
        rcgen::SerialNumber::from_slice(&self.0)
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_colon_hex())
    }
}

impl fmt::Debug for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Serial({})", self.to_colon_hex())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn random_serials_are_positive_fixed_length_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let s = Serial::random();
            assert_eq!(s.as_bytes().len(), SERIAL_LEN);
            assert_eq!(s.as_bytes()[0] & 0x80, 0);
            assert_ne!(s.as_bytes()[0], 0);
            assert!(seen.insert(s));
        }
    }

    #[test]
    fn parses_vault_and_plain_forms() {
        let s = Serial::parse("7a:0b:01").unwrap();
        assert_eq!(s.as_bytes(), &[0x7a, 0x0b, 0x01]);
        assert_eq!(Serial::parse("7a0b01"), Some(s.clone()));
        assert_eq!(Serial::parse("7A-0B-01"), Some(s.clone()));
        assert_eq!(s.to_string(), "7a:0b:01");
        assert_eq!(s.to_hex(), "7a0b01");
        assert_eq!(Serial::parse("00:01").unwrap().as_bytes(), &[1]);
        for bad in ["", "xyz", "abc", &"ab".repeat(21)] {
            assert!(Serial::parse(bad).is_none(), "{bad}");
        }
    }
}

//! Thin helpers over RustCrypto's [`der`](::der) crate, which does all DER
//! reading and writing in this crate (OCSP in [`crate::ocsp`], the Authority
//! Information Access extension in [`crate::subject`]).
//!
//! Why this module still exists: it keeps the small byte-level view that the
//! fuzz targets (`tests/fuzz.rs`) and a few callers use — one TLV as
//! (identifier octet, contents, rest), and the inner key of a PKCS#8 document —
//! and it turns the `der` crate's errors into short, fixed descriptions that
//! never quote the input. No lengths are parsed or written here: headers are
//! read by [`::der::Header`], PKCS#8 by the `pkcs8` crate. Only definite-length
//! DER is accepted (the `der` crate is built without its `ber` feature).

use ::der::{Decode, ErrorKind, Header, Reader, SliceReader};

/// Identifier octets of the universal tags callers look for.
pub mod tag {
    /// INTEGER
    pub const INTEGER: u8 = 0x02;
    /// BIT STRING
    pub const BIT_STRING: u8 = 0x03;
    /// OCTET STRING
    pub const OCTET_STRING: u8 = 0x04;
    /// OBJECT IDENTIFIER
    pub const OID: u8 = 0x06;
    /// SEQUENCE (constructed)
    pub const SEQUENCE: u8 = 0x30;
}

/// A DER structure could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed DER: {0}")]
pub struct DerError(pub &'static str);

impl From<::der::Error> for DerError {
    fn from(err: ::der::Error) -> Self {
        DerError(describe(&err))
    }
}

/// A fixed, input-free description of what the `der` crate refused.
pub(crate) fn describe(err: &::der::Error) -> &'static str {
    match err.kind() {
        ErrorKind::Incomplete { .. } => "truncated (a length runs past the end of the input)",
        ErrorKind::IndefiniteLength => "indefinite length (BER), not DER",
        ErrorKind::TrailingData { .. } => "trailing data after a value",
        ErrorKind::TagUnexpected { .. } => "unexpected tag",
        ErrorKind::TagNumberInvalid | ErrorKind::TagUnknown { .. } => "unsupported tag",
        ErrorKind::Noncanonical { .. } => "non-canonical encoding",
        ErrorKind::Length { .. } | ErrorKind::Overlength | ErrorKind::Overflow => "bad length",
        ErrorKind::NestingDepth => "nested too deeply",
        ErrorKind::OidMalformed => "malformed object identifier",
        ErrorKind::DateTime => "bad date or time",
        ErrorKind::Value { .. } => "bad value",
        _ => "not valid DER",
    }
}

/// Reads one TLV from the front of `input`: (first identifier octet, contents, rest).
pub fn read_tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), DerError> {
    let mut reader = SliceReader::new(input)?;
    let header = Header::decode(&mut reader)?;
    let contents = reader.read_slice(header.length())?;
    let used = usize::try_from(reader.position())?;
    let identifier = input.first().copied().ok_or(DerError("truncated tag"))?;
    let rest = input.get(used..).ok_or(DerError("bad length"))?;
    Ok((identifier, contents, rest))
}

/// Reads a TLV and checks its identifier octet: (contents, rest).
pub fn expect(input: &[u8], want: u8) -> Result<(&[u8], &[u8]), DerError> {
    let (tag, contents, rest) = read_tlv(input)?;
    if tag != want {
        return Err(DerError("unexpected tag"));
    }
    Ok((contents, rest))
}

/// The privateKey OCTET STRING contents of a PKCS#8 PrivateKeyInfo (v1 or v2).
/// For RSA this is exactly the PKCS#1 RSAPrivateKey.
pub fn pkcs8_private_key_octets(pkcs8: &[u8]) -> Result<&[u8], DerError> {
    let (info, _) = pkcs8::PrivateKeyInfoRef::from_der_partial(pkcs8)?;
    Ok(info.private_key.as_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    //! The `der` crate must write exactly the bytes the former hand codec wrote.

    use super::*;
    use ::der::Encode;
    use ::der::asn1::{ObjectIdentifier, OctetStringRef, UintRef};

    #[test]
    fn encodes_lengths_in_short_and_long_form() {
        let short = OctetStringRef::new(&[1, 2]).unwrap().to_der().unwrap();
        assert_eq!(short, vec![0x04, 2, 1, 2]);
        let long = OctetStringRef::new(&[0u8; 200]).unwrap().to_der().unwrap();
        assert_eq!(&long[..3], &[0x04, 0x81, 200]);
        let longer = OctetStringRef::new(&[0u8; 300]).unwrap().to_der().unwrap();
        assert_eq!(&longer[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let (tag, contents, rest) = read_tlv(&longer).unwrap();
        assert_eq!((tag, contents.len(), rest.len()), (0x04, 300, 0));
    }

    #[test]
    fn encodes_oids_and_integers() {
        let oid = |s: &str| ObjectIdentifier::new(s).unwrap().to_der().unwrap();
        let uint = |b: &[u8]| UintRef::new(b).unwrap().to_der().unwrap();
        assert_eq!(
            oid("1.3.6.1.5.5.7.48.1"),
            vec![0x06, 0x08, 0x2b, 6, 1, 5, 5, 7, 0x30, 1]
        );
        // 1.2.840.10045 uses multi-byte arcs
        assert_eq!(
            oid("1.2.840.10045"),
            vec![0x06, 0x05, 0x2a, 0x86, 0x48, 0xce, 0x3d]
        );
        assert_eq!(uint(&[0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(uint(&[0x00, 0x00, 0x01]), vec![0x02, 0x01, 0x01]);
        // Zero: `der` writes an empty magnitude as an empty INTEGER, so zero is `[0]`
        // (the hand codec took `[]` too; no caller passes an empty magnitude).
        assert_eq!(uint(&[0x00]), vec![0x02, 0x01, 0x00]);
    }

    #[test]
    fn rejects_truncated_and_indefinite_input() {
        assert!(read_tlv(&[]).is_err());
        assert!(read_tlv(&[0x30]).is_err());
        assert!(read_tlv(&[0x30, 0x80]).is_err());
        assert!(read_tlv(&[0x30, 0x05, 1, 2]).is_err());
        assert_eq!(
            read_tlv(&[0x30, 0x80, 0x00, 0x00]).unwrap_err(),
            DerError("indefinite length (BER), not DER")
        );
    }

    #[test]
    fn reads_the_pkcs8_inner_key() {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let pkcs8 = pair.serialize_der();
        let inner = pkcs8_private_key_octets(&pkcs8).unwrap();
        // An ECPrivateKey (RFC 5915): a SEQUENCE starting with version 1.
        assert_eq!(&inner[..1], &[tag::SEQUENCE]);
        assert!(pkcs8_private_key_octets(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_err());
    }
}

//! A minimal DER reader and writer for the few structures rcgen does not
//! build for us: the Authority Information Access extension, the inner key of
//! a PKCS#8 document, and (for the OCSP responder) simple SEQUENCEs.
//!
//! Only definite-length encodings are accepted; anything else is an error.

/// DER tags used by the engine.
pub mod tag {
    /// INTEGER
    pub const INTEGER: u8 = 0x02;
    /// BIT STRING
    pub const BIT_STRING: u8 = 0x03;
    /// OCTET STRING
    pub const OCTET_STRING: u8 = 0x04;
    /// NULL
    pub const NULL: u8 = 0x05;
    /// OBJECT IDENTIFIER
    pub const OID: u8 = 0x06;
    /// ENUMERATED
    pub const ENUMERATED: u8 = 0x0a;
    /// GeneralizedTime
    pub const GENERALIZED_TIME: u8 = 0x18;
    /// SEQUENCE (constructed)
    pub const SEQUENCE: u8 = 0x30;
    /// Context-specific primitive tag 6, IA5String uniformResourceIdentifier in GeneralName.
    pub const GENERAL_NAME_URI: u8 = 0x86;
}

/// A DER structure could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed DER: {0}")]
pub struct DerError(pub &'static str);

/// Reads one TLV from the front of `input`: (tag, contents, rest).
pub fn read_tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), DerError> {
    let (&tag, rest) = input.split_first().ok_or(DerError("truncated tag"))?;
    let (&first, rest) = rest.split_first().ok_or(DerError("truncated length"))?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err(DerError("bad length"));
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | usize::from(b);
        }
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(DerError("contents shorter than their length"));
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// Reads a TLV and checks its tag.
pub fn expect(input: &[u8], want: u8) -> Result<(&[u8], &[u8]), DerError> {
    let (tag, contents, rest) = read_tlv(input)?;
    if tag != want {
        return Err(DerError("unexpected tag"));
    }
    Ok((contents, rest))
}

/// Encodes one TLV.
pub fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(contents.len() + 6);
    out.push(tag);
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(contents);
    out
}

/// Encodes a SEQUENCE of already-encoded elements.
pub fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag::SEQUENCE, &parts.concat())
}

/// Encodes an OBJECT IDENTIFIER from its arcs.
pub fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut body = Vec::new();
    if arcs.len() >= 2 {
        push_base128(&mut body, arcs[0] * 40 + arcs[1]);
        for &arc in &arcs[2..] {
            push_base128(&mut body, arc);
        }
    }
    tlv(tag::OID, &body)
}

fn push_base128(out: &mut Vec<u8>, mut value: u64) {
    let mut tmp = [0u8; 10];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            break;
        }
    }
    let last = tmp.len() - 1;
    for (j, b) in tmp.iter().enumerate().skip(i) {
        out.push(if j == last { *b } else { b | 0x80 });
    }
}

/// Encodes a non-negative INTEGER from big-endian magnitude bytes.
pub fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let trimmed: &[u8] = {
        let skip = magnitude.iter().take_while(|&&b| b == 0).count();
        &magnitude[skip.min(magnitude.len().saturating_sub(1))..]
    };
    let mut body = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        body.push(0);
    }
    body.extend_from_slice(trimmed);
    tlv(tag::INTEGER, &body)
}

/// OID arcs of id-ad-ocsp (1.3.6.1.5.5.7.48.1).
pub const ID_AD_OCSP: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1];
/// OID arcs of id-ad-caIssuers (1.3.6.1.5.5.7.48.2).
pub const ID_AD_CA_ISSUERS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 2];
/// OID arcs of id-pe-authorityInfoAccess (1.3.6.1.5.5.7.1.1).
pub const ID_PE_AUTHORITY_INFO_ACCESS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];

/// The value of an Authority Information Access extension (RFC 5280
/// 4.2.2.1) with OCSP responders first, then CA issuer URLs.
pub fn authority_info_access(ocsp: &[String], ca_issuers: &[String]) -> Vec<u8> {
    let mut parts = Vec::new();
    for (method, urls) in [(ID_AD_OCSP, ocsp), (ID_AD_CA_ISSUERS, ca_issuers)] {
        for url in urls {
            parts.push(sequence(&[
                &oid(method),
                &tlv(tag::GENERAL_NAME_URI, url.as_bytes()),
            ]));
        }
    }
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    sequence(&refs)
}

/// The privateKey OCTET STRING contents of a PKCS#8 PrivateKeyInfo. For RSA
/// this is exactly the PKCS#1 RSAPrivateKey.
pub fn pkcs8_private_key_octets(pkcs8: &[u8]) -> Result<&[u8], DerError> {
    let (info, _) = expect(pkcs8, tag::SEQUENCE)?;
    let (_version, rest) = expect(info, tag::INTEGER)?;
    let (_algorithm, rest) = expect(rest, tag::SEQUENCE)?;
    let (octets, _) = expect(rest, tag::OCTET_STRING)?;
    Ok(octets)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn encodes_lengths_in_short_and_long_form() {
        assert_eq!(tlv(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        let long = tlv(0x04, &[0u8; 200]);
        assert_eq!(&long[..3], &[0x04, 0x81, 200]);
        let longer = tlv(0x04, &[0u8; 300]);
        assert_eq!(&longer[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let (tag, contents, rest) = read_tlv(&longer).unwrap();
        assert_eq!((tag, contents.len(), rest.len()), (0x04, 300, 0));
    }

    #[test]
    fn encodes_oids_and_integers() {
        // 1.3.6.1.5.5.7.48.1
        assert_eq!(
            oid(ID_AD_OCSP),
            vec![0x06, 0x08, 0x2b, 6, 1, 5, 5, 7, 0x30, 1]
        );
        // 1.2.840.10045 uses multi-byte arcs
        assert_eq!(
            oid(&[1, 2, 840, 10045]),
            vec![0x06, 0x05, 0x2a, 0x86, 0x48, 0xce, 0x3d]
        );
        assert_eq!(unsigned_integer(&[0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(
            unsigned_integer(&[0x00, 0x00, 0x01]),
            vec![0x02, 0x01, 0x01]
        );
        assert_eq!(unsigned_integer(&[]), vec![0x02, 0x01, 0x00]);
    }

    #[test]
    fn rejects_truncated_and_indefinite_input() {
        assert!(read_tlv(&[]).is_err());
        assert!(read_tlv(&[0x30]).is_err());
        assert!(read_tlv(&[0x30, 0x80]).is_err());
        assert!(read_tlv(&[0x30, 0x05, 1, 2]).is_err());
    }
}

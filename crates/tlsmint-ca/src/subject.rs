//! Subject distinguished names and the URLs written into certificates
//! (Authority Information Access, CRL distribution points).

use der::asn1::{Ia5StringRef, ObjectIdentifier};
use der::{Encode, Sequence};
use rcgen::{CrlDistributionPoint, CustomExtension, DistinguishedName, DnType, DnValue};

use crate::error::{Error, Result};

/// id-pe-authorityInfoAccess (1.3.6.1.5.5.7.1.1), as arcs for rcgen.
const ID_PE_AUTHORITY_INFO_ACCESS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
/// id-ad-ocsp
const ID_AD_OCSP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1");
/// id-ad-caIssuers
const ID_AD_CA_ISSUERS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.2");

/// `AccessDescription` (RFC 5280 4.2.2.1) with a URI location: the
/// `GeneralName` CHOICE narrowed to its `uniformResourceIdentifier [6] IA5String`
/// (IMPLICIT, as in the PKIX1Implicit88 module), the only form tlsmint writes.
#[derive(Debug, Sequence)]
struct AccessDescription<'a> {
    access_method: ObjectIdentifier,
    #[asn1(context_specific = "6", tag_mode = "IMPLICIT")]
    access_location: Ia5StringRef<'a>,
}

/// Subject fields, as in `PkiMount.spec.subject` and `IssuerRole.spec.subject`.
/// Each list may hold at most one value (rcgen writes one value per
/// attribute); more is refused rather than silently dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subject {
    /// Common name; empty means none.
    pub common_name: String,
    /// O
    pub organization: Vec<String>,
    /// OU
    pub organizational_unit: Vec<String>,
    /// C (two letters)
    pub country: Vec<String>,
    /// ST
    pub province: Vec<String>,
    /// L
    pub locality: Vec<String>,
}

impl Subject {
    /// A subject with only a common name.
    pub fn with_common_name(cn: impl Into<String>) -> Self {
        Subject {
            common_name: cn.into(),
            ..Subject::default()
        }
    }

    /// Checks the fields can be encoded.
    pub fn validate(&self) -> Result<()> {
        self.to_distinguished_name(None).map(|_| ())
    }

    /// Builds the DN; `common_name` overrides `self.common_name` when given.
    pub(crate) fn to_distinguished_name(
        &self,
        common_name: Option<&str>,
    ) -> Result<DistinguishedName> {
        let mut dn = DistinguishedName::new();
        let single = |field: &'static str, values: &[String]| -> Result<Option<String>> {
            match values {
                [] => Ok(None),
                [one] if one.trim().is_empty() => Err(Error::InvalidConfig {
                    field,
                    reason: "empty value".into(),
                }),
                [one] if one.len() > 64 => Err(Error::InvalidConfig {
                    field,
                    reason: "longer than 64 characters".into(),
                }),
                [one] => Ok(Some(one.clone())),
                _ => Err(Error::InvalidConfig {
                    field,
                    reason: "tlsmint writes one value per subject attribute; give a single value"
                        .into(),
                }),
            }
        };
        if let Some(c) = single("subject.country", &self.country)? {
            let ok = c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase());
            let value = rcgen::string::PrintableString::try_from(c.as_str())
                .ok()
                .filter(|_| ok);
            let value = value.ok_or_else(|| Error::InvalidConfig {
                field: "subject.country",
                reason: format!("\"{c}\" is not a two-letter upper-case country code"),
            })?;
            dn.push(DnType::CountryName, DnValue::PrintableString(value));
        }
        if let Some(v) = single("subject.province", &self.province)? {
            dn.push(DnType::StateOrProvinceName, v);
        }
        if let Some(v) = single("subject.locality", &self.locality)? {
            dn.push(DnType::LocalityName, v);
        }
        if let Some(v) = single("subject.organization", &self.organization)? {
            dn.push(DnType::OrganizationName, v);
        }
        if let Some(v) = single("subject.organizationalUnit", &self.organizational_unit)? {
            dn.push(DnType::OrganizationalUnitName, v);
        }
        let cn = common_name.unwrap_or(&self.common_name);
        if !cn.is_empty() {
            if cn.len() > 64 {
                return Err(Error::InvalidConfig {
                    field: "commonName",
                    reason: "longer than 64 characters (RFC 5280 ub-common-name)".into(),
                });
            }
            dn.push(DnType::CommonName, cn);
        }
        Ok(dn)
    }
}

/// URLs written into certificates issued by a mount (`PkiMount.spec.urls`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Urls {
    /// CA issuer URLs (AIA caIssuers).
    pub issuing_certificates: Vec<String>,
    /// CRL distribution points.
    pub crl_distribution_points: Vec<String>,
    /// OCSP responder URLs (AIA ocsp).
    pub ocsp_servers: Vec<String>,
}

impl Urls {
    /// Checks every URL is an absolute http(s) URL of printable ASCII.
    pub fn validate(&self) -> Result<()> {
        for (field, urls) in [
            ("urls.issuingCertificates", &self.issuing_certificates),
            ("urls.crlDistributionPoints", &self.crl_distribution_points),
            ("urls.ocspServers", &self.ocsp_servers),
        ] {
            for url in urls {
                let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
                let chars_ok = url.bytes().all(|b| b.is_ascii_graphic());
                if !scheme_ok || !chars_ok || url.len() > 2048 {
                    return Err(Error::InvalidConfig {
                        field,
                        reason: format!("\"{url}\" is not an absolute http(s) URL"),
                    });
                }
            }
        }
        Ok(())
    }

    pub(crate) fn apply(&self, params: &mut rcgen::CertificateParams) -> Result<()> {
        if !self.crl_distribution_points.is_empty() {
            params.crl_distribution_points = vec![CrlDistributionPoint {
                uris: self.crl_distribution_points.clone(),
            }];
        }
        if !self.ocsp_servers.is_empty() || !self.issuing_certificates.is_empty() {
            let value = self.authority_info_access()?;
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    ID_PE_AUTHORITY_INFO_ACCESS,
                    value,
                ));
        }
        Ok(())
    }

    /// The value of an Authority Information Access extension (RFC 5280
    /// 4.2.2.1) with OCSP responders first, then CA issuer URLs.
    fn authority_info_access(&self) -> Result<Vec<u8>> {
        let mut access = Vec::new();
        for (field, method, urls) in [
            ("urls.ocspServers", ID_AD_OCSP, &self.ocsp_servers),
            (
                "urls.issuingCertificates",
                ID_AD_CA_ISSUERS,
                &self.issuing_certificates,
            ),
        ] {
            for url in urls {
                let access_location = Ia5StringRef::new(url).map_err(|_| Error::InvalidConfig {
                    field,
                    reason: format!("\"{url}\" is not an ASCII (IA5String) URL"),
                })?;
                access.push(AccessDescription {
                    access_method: method,
                    access_location,
                });
            }
        }
        access.to_der().map_err(|e| Error::InvalidConfig {
            field: "urls",
            reason: format!("the Authority Information Access extension cannot be encoded: {e}"),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn refuses_multi_valued_and_bad_country() {
        let mut s = Subject::with_common_name("x");
        s.organization = vec!["a".into(), "b".into()];
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("single value")
        );
        let mut s = Subject::with_common_name("x");
        s.country = vec!["usa".into()];
        assert!(s.validate().unwrap_err().to_string().contains("country"));
        s.country = vec!["US".into()];
        assert!(s.validate().is_ok());
    }

    #[test]
    fn refuses_non_http_urls() {
        let urls = Urls {
            ocsp_servers: vec!["ftp://x".into()],
            ..Urls::default()
        };
        assert!(
            urls.validate()
                .unwrap_err()
                .to_string()
                .contains("urls.ocspServers")
        );
        let urls = Urls {
            crl_distribution_points: vec!["http://ca.example/crl".into()],
            ..Urls::default()
        };
        assert!(urls.validate().is_ok());
    }

    #[test]
    fn authority_info_access_has_ocsp_first_then_ca_issuers() {
        let urls = Urls {
            issuing_certificates: vec!["http://b".into()],
            ocsp_servers: vec!["http://a".into()],
            ..Urls::default()
        };
        let mut expected = vec![0x30, 0x2c];
        for (last_arc, url) in [(1u8, b"http://a"), (2, b"http://b")] {
            expected.extend_from_slice(&[0x30, 0x14, 0x06, 0x08, 0x2b, 6, 1, 5, 5, 7, 0x30]);
            expected.extend_from_slice(&[last_arc, 0x86, 0x08]);
            expected.extend_from_slice(url);
        }
        assert_eq!(urls.authority_info_access().unwrap(), expected);
        let bad = Urls {
            ocsp_servers: vec!["http://é".into()],
            ..Urls::default()
        };
        assert!(
            bad.authority_info_access()
                .unwrap_err()
                .to_string()
                .contains("urls.ocspServers")
        );
    }
}

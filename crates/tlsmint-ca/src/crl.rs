//! Certificate revocation lists: a signed CRL (DER and PEM) from a list of
//! revoked serials, with thisUpdate, nextUpdate and a CRL number.

use std::time::Duration;

use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevokedCertParams, SerialNumber};
use time::OffsetDateTime;

use crate::ca::CertificateAuthority;
use crate::error::{Error, Result};
use crate::pem;
use crate::serial::Serial;

/// One revoked certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Its serial.
    pub serial: Serial,
    /// When it was revoked.
    pub revoked_at: OffsetDateTime,
}

/// A signed CRL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crl {
    /// DER.
    pub der: Vec<u8>,
    /// PEM (`X509 CRL`).
    pub pem: String,
    /// CRL number.
    pub number: u64,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate.
    pub next_update: OffsetDateTime,
}

impl CertificateAuthority {
    /// Signs a CRL listing `revoked`, valid from `now` for `expiry`
    /// (`PkiMount.spec.crl.expiry`, default 72h). `number` must grow with
    /// every CRL the mount publishes.
    pub fn crl(
        &self,
        revoked: &[RevokedEntry],
        number: u64,
        now: OffsetDateTime,
        expiry: Duration,
    ) -> Result<Crl> {
        let expiry = time::Duration::try_from(expiry)
            .ok()
            .filter(|d| d.is_positive())
            .ok_or_else(|| Error::InvalidTtl("crl.expiry must be a positive duration".into()))?;
        let this_update = now.replace_nanosecond(0).unwrap_or(now);
        let next_update = this_update
            .checked_add(expiry)
            .ok_or_else(|| Error::InvalidTtl("crl.expiry overflows the calendar".into()))?;
        let ski = self
            .info()
            .subject_key_id
            .clone()
            .unwrap_or_else(|| rcgen::CertificateParams::default().key_identifier(self.key()));
        let params = CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|r| RevokedCertParams {
                    serial_number: r.serial.to_rcgen(),
                    revocation_time: r.revoked_at.replace_nanosecond(0).unwrap_or(r.revoked_at),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::PreSpecified(ski),
        };
        let crl = params
            .signed_by(self.issuer())
            .map_err(|e| Error::signing("CRL", e))?;
        let der = crl.der().to_vec();
        Ok(Crl {
            pem: pem::encode(pem::X509_CRL, &der),
            der,
            number,
            this_update,
            next_update,
        })
    }
}

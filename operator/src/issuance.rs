//! The one engine step every issuance takes, whoever asked: the issuance APIs (gRPC
//! `Issue`/`Sign`, Vault `issue`/`sign`), the CertificateRequest controller and the
//! PodCertificateRequest signer. Each caller decides who may ask and where the result
//! goes; this module turns "these names, this key, under this role and CA" into a
//! certificate, on the shared bounded CPU pool when the work is slow.
//!
//! Owns: where the CPU work runs and the order "policy first, then key generation" (a
//! refused request never costs a key). Must not: authorize callers, write anything, or
//! log key material.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tlsmint_ca::{
    CertificateAuthority, Identity, IssueRequest, Issued, KeySpec, NameRequest, PrivateKey, Role,
    SignRequest,
};
use tlsmint_runtime::cpu::{CpuError, CpuPool};

/// Where the certified key comes from.
#[derive(Debug)]
pub enum Key {
    /// The engine generates one of the role's type (Vault `issue`).
    RoleDefault,
    /// The engine generates one of this type (a CertificateRequest's `privateKey`).
    Generate(KeySpec),
    /// A key the caller holds already (a CertificateRequest that keeps its key).
    Keep(PrivateKey),
    /// A PKCS#10 request, PEM or DER: the requester keeps its key (Vault `sign`).
    Csr(Vec<u8>),
    /// A DER SubjectPublicKeyInfo whose possession the caller has proved otherwise (a
    /// PodCertificateRequest's `pkixPublicKey` with its proof of possession).
    Spki(Vec<u8>),
}

impl Key {
    /// Whether making the certificate may take long enough to keep it off the async
    /// threads: generating an RSA key.
    fn is_slow(&self, role: &Role) -> bool {
        match self {
            Key::RoleDefault => role.profile.key.is_slow_to_generate(),
            Key::Generate(spec) => spec.is_slow_to_generate(),
            Key::Keep(_) | Key::Csr(_) | Key::Spki(_) => false,
        }
    }
}

/// One certificate to make.
#[derive(Debug)]
pub struct Order {
    /// The CA of the role's mount.
    pub ca: Arc<CertificateAuthority>,
    /// The compiled role.
    pub role: Arc<Role>,
    /// Who the certificate is for (fills the role's templates).
    pub identity: Identity,
    /// The names asked for (a CSR's own names are added to them).
    pub names: NameRequest,
    /// The TTL asked for; `None` takes the role's.
    pub ttl: Option<Duration>,
    /// The key to certify.
    pub key: Key,
}

/// Why no certificate was made.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The engine refused or failed; its [`tlsmint_ca::Error::class`] says which.
    #[error(transparent)]
    Engine(#[from] tlsmint_ca::Error),
    /// The job on the CPU pool did not finish.
    #[error(transparent)]
    Cpu(#[from] CpuError),
}

/// Makes the certificate. Signing with an RSA CA key takes well under a millisecond, so
/// only key generation is sent to `cpu`; everything else runs here, without a thread
/// handoff.
pub async fn issue(cpu: &CpuPool, order: Order) -> Result<Issued, Failure> {
    if order.key.is_slow(&order.role) {
        // Refuse before spending a key generation on a request that will not be signed.
        order
            .role
            .policy
            .check(&order.identity, &order.names)
            .map_err(tlsmint_ca::Error::from)?;
        Ok(cpu.run("key generation", move || make(order)).await??)
    } else {
        Ok(make(order)?)
    }
}

/// The engine call itself (blocking when a key is generated).
fn make(order: Order) -> Result<Issued, tlsmint_ca::Error> {
    let Order {
        ca,
        role,
        identity,
        names,
        ttl,
        key,
    } = order;
    let now = OffsetDateTime::now_utc();
    match key {
        Key::RoleDefault => ca.issue(&role, &identity, &IssueRequest { names, ttl }, now),
        Key::Generate(spec) => {
            role.policy.check(&identity, &names)?;
            let key = PrivateKey::generate(spec)?;
            ca.issue_with_key(&role, &identity, &IssueRequest { names, ttl }, key, now)
        }
        Key::Keep(key) => {
            ca.issue_with_key(&role, &identity, &IssueRequest { names, ttl }, key, now)
        }
        Key::Csr(csr) => ca.sign(&role, &identity, &SignRequest { csr, names, ttl }, now),
        Key::Spki(spki) => {
            ca.issue_for_public_key(&role, &identity, &IssueRequest { names, ttl }, &spki, now)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use tlsmint_ca::{CaConfig, LeafProfile, Policy, Subject};

    fn ca() -> Arc<CertificateAuthority> {
        let cfg = CaConfig {
            name: "pki".into(),
            subject: Subject::with_common_name("Test Root"),
            key: KeySpec::EcdsaP256,
            ttl: Duration::from_secs(86400),
        };
        Arc::new(CertificateAuthority::generate_root(&cfg, OffsetDateTime::now_utc()).unwrap())
    }

    fn role(key: KeySpec) -> Arc<Role> {
        Arc::new(Role {
            policy: Policy {
                role: "web".into(),
                allowed_domains: vec!["example.com".into()],
                allow_subdomains: true,
                enforce_hostnames: true,
                ..Policy::default()
            },
            profile: LeafProfile {
                key,
                ..LeafProfile::default()
            },
        })
    }

    fn order(role: Arc<Role>, cn: &str, key: Key) -> Order {
        Order {
            ca: ca(),
            role,
            identity: Identity {
                namespace: "default".into(),
                service_account: Some("web".into()),
            },
            names: NameRequest {
                common_name: Some(cn.into()),
                ..NameRequest::default()
            },
            ttl: None,
            key,
        }
    }

    #[tokio::test]
    async fn every_key_source_gives_a_certificate_for_its_key() {
        let cpu = CpuPool::new(1);
        let held = PrivateKey::generate(KeySpec::EcdsaP256).unwrap();
        let csr = tlsmint_ca::csr::proof_of_possession(&held).unwrap();
        let role = role(KeySpec::EcdsaP256);
        for (key, generated) in [
            (Key::RoleDefault, true),
            (Key::Generate(KeySpec::EcdsaP384), true),
            (
                Key::Keep(PrivateKey::from_der(held.pkcs8_der()).unwrap()),
                true,
            ),
            (Key::Csr(csr.clone()), false),
            (Key::Spki(held.public_key_der()), false),
        ] {
            let what = format!("{key:?}").chars().take(12).collect::<String>();
            let issued = issue(&cpu, order(role.clone(), "a.example.com", key))
                .await
                .unwrap();
            assert_eq!(issued.private_key.is_some(), generated, "{what}");
            assert_eq!(
                issued.names.common_name.as_deref(),
                Some("a.example.com"),
                "{what}"
            );
        }
    }

    /// A refused name costs no RSA key generation: the policy answers first, on the
    /// caller's thread, with the engine's own error.
    #[tokio::test]
    async fn a_refused_name_is_answered_before_a_slow_key_is_made() {
        // A pool with no free slot: if the refusal needed it, the call would hang.
        let cpu = CpuPool::new(1);
        let busy = cpu.clone();
        let (hold, held) = tokio::sync::oneshot::channel::<()>();
        let blocker = tokio::spawn(async move {
            busy.run("blocker", move || {
                let _ = held.blocking_recv();
            })
            .await
        });
        tokio::task::yield_now().await;
        let err = issue(
            &cpu,
            order(role(KeySpec::Rsa4096), "evil.test", Key::RoleDefault),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, Failure::Engine(tlsmint_ca::Error::Policy(_))),
            "{err}"
        );
        assert!(err.to_string().contains("evil.test"), "{err}");
        hold.send(()).unwrap();
        blocker.await.unwrap().unwrap();
    }
}

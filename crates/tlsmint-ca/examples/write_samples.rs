//! Writes one certificate of every kind the engine issues into a folder, so
//! external tools (openssl, pkilint) can check them. Used by
//! `scripts/check-x509`.
//!
//! Usage: `cargo run -p tlsmint-ca --example write_samples -- OUT_DIR`
//!
//! Per key type K in {ecdsa256, ecdsa384, ed25519, rsa2048}:
//!   K/root.pem, K/intermediate.pem, K/server.pem, K/client.pem,
//!   K/revoked.pem (revoked, listed on K/crl.pem), K/spiffe.pem (a URI-only
//!   SPIFFE client certificate), K/crl.pem, K/crl.der,
//!   K/root-crl.pem (the root's empty CRL).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use time::OffsetDateTime;
use tlsmint_ca::{
    CaConfig, CertificateAuthority, Identity, IssueRequest, KeySpec, LeafProfile, MountOptions,
    NameRequest, Policy, RevokedEntry, Role, Subject, Urls,
};

const HOUR: Duration = Duration::from_secs(3600);

fn main() -> Result<()> {
    let Some(out) = std::env::args().nth(1) else {
        bail!("usage: write_samples OUT_DIR");
    };
    let out = PathBuf::from(out);
    for (dir, spec) in [
        ("ecdsa256", KeySpec::EcdsaP256),
        ("ecdsa384", KeySpec::EcdsaP384),
        ("ed25519", KeySpec::Ed25519),
        ("rsa2048", KeySpec::Rsa2048),
    ] {
        write_set(&out.join(dir), spec).with_context(|| format!("writing the {dir} set"))?;
    }
    println!("wrote samples to {}", out.display());
    Ok(())
}

fn urls(mount: &str) -> Urls {
    let base = format!("http://127.0.0.1:8200/v1/{mount}");
    Urls {
        issuing_certificates: vec![format!("{base}/ca")],
        crl_distribution_points: vec![format!("{base}/crl")],
        ocsp_servers: vec![format!("{base}/ocsp")],
    }
}

fn write_set(dir: &Path, spec: KeySpec) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let now = OffsetDateTime::now_utc();
    let mut subject = Subject::with_common_name("tlsmint Sample Root CA");
    subject.organization = vec!["tlsmint".into()];
    subject.country = vec!["US".into()];
    let root = CertificateAuthority::generate_root(
        &CaConfig {
            name: "pki".into(),
            subject: subject.clone(),
            key: spec,
            ttl: HOUR * 24 * 365,
        },
        now,
    )?
    .with_options(MountOptions {
        urls: urls("pki"),
        ..MountOptions::default()
    })?;
    subject.common_name = "tlsmint Sample Intermediate CA".into();
    let int = CertificateAuthority::generate_intermediate(
        &CaConfig {
            name: "pki_int".into(),
            subject,
            key: spec,
            ttl: HOUR * 24 * 180,
        },
        &root,
        now,
    )?
    .with_options(MountOptions {
        urls: urls("pki_int"),
        ..MountOptions::default()
    })?;
    let policy = Policy {
        role: "web-server".into(),
        allowed_domains: vec!["example.com".into()],
        allow_bare_domains: false,
        allow_subdomains: true,
        allow_glob_domains: false,
        allow_wildcard_certificates: false,
        allow_localhost: false,
        allow_any_name: false,
        enforce_hostnames: true,
        allow_ip_sans: true,
        allowed_uri_sans: vec!["spiffe://cluster.local/ns/{{namespace}}/sa/*".into()],
        require_common_name: false,
    };
    let profile = LeafProfile {
        key: spec,
        csr_keys: tlsmint_ca::CsrKeyRule::Any,
        ..LeafProfile::default()
    };
    let server_role = Role {
        policy: policy.clone(),
        profile: LeafProfile {
            client_flag: false,
            ..profile.clone()
        },
    };
    let client_role = Role {
        policy,
        profile: LeafProfile {
            server_flag: false,
            ..profile
        },
    };
    let who = Identity {
        namespace: "default".into(),
        service_account: Some("web".into()),
    };
    let names = NameRequest {
        common_name: Some("api.example.com".into()),
        dns_names: vec!["www.example.com".into()],
        ip_addresses: vec!["127.0.0.1".into()],
        uris: vec![],
    };
    let req = IssueRequest {
        names,
        ttl: Some(HOUR * 24),
    };
    let server = int.issue(&server_role, &who, &req, now)?;
    let client = int.issue(&client_role, &who, &req, now)?;
    let revoked = int.issue(&server_role, &who, &req, now)?;
    let spiffe_req = IssueRequest {
        names: NameRequest {
            uris: vec!["spiffe://cluster.local/ns/default/sa/web".into()],
            ..NameRequest::default()
        },
        ttl: Some(HOUR),
    };
    let spiffe = int.issue(&client_role, &who, &spiffe_req, now)?;
    let crl = int.crl(
        &[RevokedEntry {
            serial: revoked.serial.clone(),
            revoked_at: now,
        }],
        1,
        now,
        HOUR * 72,
    )?;
    let root_crl = root.crl(&[], 1, now, HOUR * 72)?;
    let write = |name: &str, data: &[u8]| -> Result<()> {
        std::fs::write(dir.join(name), data).with_context(|| format!("writing {name}"))
    };
    write("root.pem", root.certificate_pem().as_bytes())?;
    write("intermediate.pem", int.certificate_pem().as_bytes())?;
    write("server.pem", server.certificate_pem.as_bytes())?;
    write("client.pem", client.certificate_pem.as_bytes())?;
    write("revoked.pem", revoked.certificate_pem.as_bytes())?;
    write("spiffe.pem", spiffe.certificate_pem.as_bytes())?;
    write("crl.pem", crl.pem.as_bytes())?;
    write("crl.der", &crl.der)?;
    write("root-crl.pem", root_crl.pem.as_bytes())?;
    Ok(())
}

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::Command;

use k8s_openapi::ByteString;
use tlsmint_api::v1alpha1::{Pkcs12Import, SecretReference};
use tlsmint_ca::{CaConfig, ExposeSecret as _, KeyEncoding, KeySpec, Subject};

use super::*;

fn root(cn: &str) -> CertificateAuthority {
    let cfg = CaConfig {
        name: "old".into(),
        subject: Subject::with_common_name(cn),
        key: KeySpec::EcdsaP256,
        ttl: std::time::Duration::from_secs(86_400),
    };
    CertificateAuthority::generate_root(&cfg, time::OffsetDateTime::now_utc()).unwrap()
}

fn intermediate(parent: &CertificateAuthority) -> CertificateAuthority {
    let cfg = CaConfig {
        name: "old-int".into(),
        subject: Subject::with_common_name("Old Intermediate"),
        key: KeySpec::EcdsaP256,
        ttl: std::time::Duration::from_secs(3_600),
    };
    CertificateAuthority::generate_intermediate(&cfg, parent, time::OffsetDateTime::now_utc())
        .unwrap()
}

fn secret(entries: &[(&str, &[u8])]) -> Secret {
    Secret {
        data: Some(
            entries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), ByteString(v.to_vec())))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Secret::default()
    }
}

fn pkcs12_import() -> ImportFrom {
    ImportFrom {
        secret_ref: SecretReference::new("old-ca"),
        pkcs12: Some(Pkcs12Import::default()),
    }
}

/// A PKCS#12 bundle of `ca`'s key and its certificate plus chain, as p12-keystore writes it.
fn bundle(ca: &CertificateAuthority, password: &str) -> Vec<u8> {
    let mut certs = vec![p12_keystore::Certificate::from_der(ca.certificate_der()).unwrap()];
    for der in ca.parents_der() {
        certs.push(p12_keystore::Certificate::from_der(der).unwrap());
    }
    let key = p12_keystore::PrivateKey::from_der(ca.key().pkcs8_der()).unwrap();
    let chain = p12_keystore::PrivateKeyChain::new(b"1".to_vec(), key, certs);
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry("ca", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
    store.writer(password).write().unwrap()
}

fn message(e: &MaterialError) -> String {
    tlsmint_ca::report(e)
}

#[test]
fn pem_entries_give_the_same_ca() {
    let ca = root("Old Root");
    let key = ca.key().to_pem(KeyEncoding::Pkcs8).unwrap();
    let s = secret(&[
        ("tls.crt", ca.certificate_pem().as_bytes()),
        ("tls.key", key.expose_secret().as_bytes()),
    ]);
    let material = KeyMaterial::read(&s, "old-ca", None).unwrap();
    assert_eq!(material.certificate, ca.certificate_der());
    assert!(material.chain.is_empty());
    let loaded = material.into_ca("old").unwrap();
    assert_eq!(loaded.certificate_der(), ca.certificate_der());
    assert_eq!(entries_present(&s, None), (true, true));
}

#[test]
fn pem_faults_are_named() {
    let ca = root("Old Root");
    let s = secret(&[("tls.crt", ca.certificate_pem().as_bytes())]);
    let e = KeyMaterial::read(&s, "old-ca", None).unwrap_err();
    assert_eq!(e.to_string(), "Secret old-ca has no tls.key");
    assert_eq!(entries_present(&s, None), (false, true));
    let s = secret(&[
        ("tls.crt", ca.certificate_pem().as_bytes()),
        (
            "tls.key",
            b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
        ),
    ]);
    let e = KeyMaterial::read(&s, "old-ca", None).unwrap_err();
    assert!(matches!(e, MaterialError::Key { .. }), "{e:?}");
    let s = secret(&[("tls.crt", b"junk"), ("tls.key", b"junk")]);
    let e = KeyMaterial::read(&s, "old-ca", None).unwrap_err();
    assert!(
        message(&e).starts_with("Secret old-ca: tls.crt is unreadable: "),
        "{}",
        message(&e)
    );
}

#[test]
fn pkcs12_root_and_intermediate_with_chain() {
    let parent = root("Old Root");
    for (ca, chain_len) in [(root("Other Root"), 0), (intermediate(&parent), 1)] {
        let s = secret(&[
            ("keystore.p12", &bundle(&ca, "s3cret")),
            ("password", b"s3cret\n"),
        ]);
        let import = pkcs12_import();
        assert_eq!(entries_present(&s, Some(&import)), (true, true));
        let material = KeyMaterial::read(&s, "old-ca", Some(&import)).unwrap();
        assert_eq!(material.certificate, ca.certificate_der());
        assert_eq!(material.chain.len(), chain_len);
        let loaded = material.into_ca("old").unwrap();
        assert_eq!(loaded.certificate_der(), ca.certificate_der());
        assert_eq!(loaded.key().pkcs8_der(), ca.key().pkcs8_der());
    }
}

#[test]
fn pkcs12_entries_are_configurable() {
    let ca = root("Old Root");
    let s = secret(&[("ca.pfx", &bundle(&ca, "")), ("pass", b"")]);
    let import = ImportFrom {
        secret_ref: SecretReference::new("old-ca"),
        pkcs12: Some(Pkcs12Import {
            key: "ca.pfx".into(),
            password_key: "pass".into(),
        }),
    };
    assert_eq!(entries_present(&s, Some(&import)), (true, true));
    let material = KeyMaterial::read(&s, "old-ca", Some(&import)).unwrap();
    assert_eq!(material.certificate, ca.certificate_der());
}

#[test]
fn pkcs12_faults_are_named_and_never_show_the_password() {
    let ca = root("Old Root");
    let good = bundle(&ca, "s3cret-password");
    let import = pkcs12_import();

    let s = secret(&[("keystore.p12", &good)]);
    assert_eq!(entries_present(&s, Some(&import)), (true, false));
    let e = KeyMaterial::read(&s, "old-ca", Some(&import)).unwrap_err();
    assert_eq!(e.to_string(), "Secret old-ca has no password");

    let s = secret(&[("password", b"x")]);
    let e = KeyMaterial::read(&s, "old-ca", Some(&import)).unwrap_err();
    assert_eq!(e.to_string(), "Secret old-ca has no keystore.p12");

    for (bytes, password) in [
        (good.as_slice(), b"wrong-guess".as_slice()),
        (b"not a bundle".as_slice(), b"s3cret-password".as_slice()),
    ] {
        let s = secret(&[("keystore.p12", bytes), ("password", password)]);
        let e = KeyMaterial::read(&s, "old-ca", Some(&import)).unwrap_err();
        assert!(matches!(e, MaterialError::Pkcs12 { .. }), "{e:?}");
        let text = message(&e);
        assert!(
            text.starts_with("Secret old-ca: keystore.p12 cannot be opened as PKCS#12 with the password in password"),
            "{text}"
        );
        assert!(
            !text.contains("s3cret") && !text.contains("wrong-guess"),
            "{text}"
        );
        assert!(!format!("{e:?}").contains("s3cret"), "{e:?}");
    }
}

#[test]
fn pkcs12_without_exactly_one_key_is_refused() {
    let a = root("A");
    let b = root("B");
    let mut store = p12_keystore::KeyStore::new();
    for (alias, ca, id) in [("a", &a, b"1"), ("b", &b, b"2")] {
        let key = p12_keystore::PrivateKey::from_der(ca.key().pkcs8_der()).unwrap();
        let cert = p12_keystore::Certificate::from_der(ca.certificate_der()).unwrap();
        store.add_entry(
            alias,
            p12_keystore::KeyStoreEntry::PrivateKeyChain(p12_keystore::PrivateKeyChain::new(
                id.to_vec(),
                key,
                [cert],
            )),
        );
    }
    let two = store.writer("pw").write().unwrap();
    let mut trust = p12_keystore::KeyStore::new();
    trust.add_entry(
        "a",
        p12_keystore::KeyStoreEntry::Certificate(
            p12_keystore::Certificate::from_der(a.certificate_der()).unwrap(),
        ),
    );
    let certs_only = trust.writer("pw").write().unwrap();
    for (bytes, found) in [
        (two, "holds 2 private keys"),
        (certs_only, "holds no private key with a certificate"),
    ] {
        let s = secret(&[("keystore.p12", &bytes), ("password", b"pw")]);
        let e = KeyMaterial::read(&s, "old-ca", Some(&pkcs12_import())).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "Secret old-ca: the PKCS#12 bundle in keystore.p12 {found}; a CA import needs exactly one private key with its certificate"
            )
        );
    }
}

/// Bundles as `openssl pkcs12 -export` writes them: OpenSSL 3's default (PBES2, AES-256,
/// SHA-256 MAC) and `-legacy` (3DES keys, RC2-40 certificates, SHA-1 MAC), the form of
/// older exports. scripts/install-deps installs openssl.
#[test]
fn pkcs12_from_openssl_default_and_legacy() {
    let dir = std::env::temp_dir().join(format!("tlsmint-p12-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let parent = root("OpenSSL Root");
    let ca = intermediate(&parent);
    let key = ca.key().to_pem(KeyEncoding::Pkcs8).unwrap();
    let cert = dir.join("ca.pem");
    let chain = dir.join("chain.pem");
    let key_file = dir.join("ca.key");
    std::fs::write(&cert, ca.certificate_pem()).unwrap();
    std::fs::write(&chain, parent.certificate_pem()).unwrap();
    std::fs::write(&key_file, key.expose_secret()).unwrap();
    for extra in [&[][..], &["-legacy"][..]] {
        let out = dir.join("ca.p12");
        let status = Command::new("openssl")
            .args(["pkcs12", "-export", "-passout", "pass:from-openssl"])
            .args(extra)
            .arg("-in")
            .arg(&cert)
            .arg("-inkey")
            .arg(&key_file)
            .arg("-certfile")
            .arg(&chain)
            .arg("-out")
            .arg(&out)
            .status()
            .expect("openssl must be installed (scripts/install-deps)");
        assert!(status.success(), "openssl pkcs12 -export {extra:?} failed");
        let bytes = std::fs::read(&out).unwrap();
        let s = secret(&[("keystore.p12", &bytes), ("password", b"from-openssl")]);
        let material = KeyMaterial::read(&s, "old-ca", Some(&pkcs12_import()))
            .unwrap_or_else(|e| panic!("{extra:?}: {}", message(&e)));
        assert_eq!(material.certificate, ca.certificate_der(), "{extra:?}");
        assert_eq!(
            material.chain,
            vec![parent.certificate_der().to_vec()],
            "{extra:?}"
        );
        material.into_ca("old-int").unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

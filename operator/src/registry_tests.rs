#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use time::OffsetDateTime;
use tlsmint_api::v1alpha1::RoleSubject;
use tlsmint_ca::{CaConfig, KeySpec, Subject};

fn ca(name: &str) -> Arc<CertificateAuthority> {
    let cfg = CaConfig {
        name: name.into(),
        subject: Subject::with_common_name(format!("{name} CA")),
        key: KeySpec::EcdsaP256,
        ttl: Duration::from_secs(3600 * 24),
    };
    Arc::new(CertificateAuthority::generate_root(&cfg, OffsetDateTime::now_utc()).unwrap())
}

fn mount(name: &str, path: &str, status: MountStatus) -> MountEntry {
    MountEntry {
        name: name.into(),
        path: path.into(),
        status,
        crl_expiry: Duration::from_secs(72 * 3600),
        trusted_roots: Vec::new(),
        other_generations: Vec::new(),
    }
}

fn role(name: &str, mount: &str) -> RoleEntry {
    let mut spec = IssuerRoleSpec::new(mount);
    spec.subjects = vec![RoleSubject::new("apps", "*")];
    spec.allowed_domains = vec!["example.com".into()];
    spec.allow_subdomains = true;
    RoleEntry::from_spec(name, &spec)
}

#[test]
fn resolves_a_role_by_name_and_by_its_own_path_only() {
    let reg = Registry::new();
    reg.put_mount(mount("pki", "pki", MountStatus::Ready(ca("pki"))))
        .unwrap();
    reg.put_mount(mount("pki-int", "/pki_int/", MountStatus::Ready(ca("int"))))
        .unwrap();
    reg.put_role(role("web", "pki-int"));
    assert_eq!(reg.resolve("web").unwrap().mount.name, "pki-int");
    assert_eq!(
        reg.resolve_at_path("pki_int", "web")
            .unwrap()
            .role
            .policy
            .role,
        "web"
    );
    let err = reg.resolve_at_path("pki", "web").unwrap_err();
    assert!(matches!(err, LookupError::RoleNotFound { .. }), "{err}");
    assert!(reg.resolve("nope").is_err());
    assert_eq!(reg.mount_by_path("pki_int").unwrap().name, "pki-int");
}

#[test]
fn not_ready_mount_and_invalid_role_say_why() {
    let reg = Registry::new();
    reg.put_mount(mount(
        "ext",
        "ext",
        MountStatus::NotReady(NotReady::new("WaitingForSignedCertificate", "")),
    ))
    .unwrap();
    reg.put_role(role("web", "ext"));
    let err = reg.resolve("web").unwrap_err();
    assert!(matches!(err, LookupError::MountNotReady { .. }), "{err}");
    assert!(err.to_string().contains("WaitingForSignedCertificate"));

    let mut spec = IssuerRoleSpec::new("ext");
    spec.allowed_domains = vec!["{{bad}}".into()];
    reg.put_role(RoleEntry::from_spec("broken", &spec));
    let err = reg.resolve("broken").unwrap_err();
    assert!(matches!(err, LookupError::RoleNotReady { .. }), "{err}");

    reg.put_role(role("orphan", "missing"));
    assert_eq!(
        reg.resolve("orphan").unwrap_err(),
        LookupError::MountNotFound("missing".into())
    );
}

#[test]
fn path_conflicts_are_refused_and_moves_free_the_old_path() {
    let reg = Registry::new();
    reg.put_mount(mount(
        "a",
        "shared",
        MountStatus::NotReady(NotReady::new("x", "")),
    ))
    .unwrap();
    let err = reg
        .put_mount(mount(
            "b",
            "shared",
            MountStatus::NotReady(NotReady::new("x", "")),
        ))
        .unwrap_err();
    assert_eq!(err.other, "a");
    reg.put_mount(mount(
        "a",
        "moved",
        MountStatus::NotReady(NotReady::new("x", "")),
    ))
    .unwrap();
    reg.put_mount(mount(
        "b",
        "shared",
        MountStatus::NotReady(NotReady::new("x", "")),
    ))
    .unwrap();
    assert_eq!(reg.mount_by_path("moved").unwrap().name, "a");
    reg.remove_mount("a");
    assert!(reg.mount_by_path("moved").is_none());
    assert_eq!(reg.mounts().len(), 1);
}

#[test]
fn subjects_are_matched_by_namespace_and_service_account() {
    let entry = role("web", "pki");
    assert!(entry.allows("apps", "frontend"));
    assert!(!entry.allows("other", "frontend"));
}

#[tokio::test]
async fn notices_are_sent_only_when_the_state_changes() {
    use futures::StreamExt;
    let reg = Registry::new();
    let mut notices = Box::pin(reg.notices());
    reg.remove_role("absent");
    reg.remove_mount("absent");
    reg.put_role(role("web", "pki"));
    assert_eq!(notices.next().await, Some(Notice::Role("web".into())));
    let pending = futures::FutureExt::now_or_never(notices.next());
    assert_eq!(pending, None, "one change, one wake-up");
    reg.remove_role("web");
    assert_eq!(notices.next().await, Some(Notice::Role("web".into())));
}

#[tokio::test]
async fn notices_name_the_mount_and_a_slow_reader_is_told_everything() {
    use futures::StreamExt;
    let reg = Registry::new();
    let mut notices = Box::pin(reg.notices());
    reg.put_mount(MountEntry {
        name: "pki".into(),
        path: "pki".into(),
        status: MountStatus::NotReady(NotReady::new("KeyMissing", "no key")),
        crl_expiry: Duration::from_secs(60),
        trusted_roots: Vec::new(),
        other_generations: Vec::new(),
    })
    .unwrap();
    reg.remove_mount("pki");
    assert_eq!(notices.next().await, Some(Notice::Mount("pki".into())));
    assert_eq!(notices.next().await, Some(Notice::Mount("pki".into())));
    for i in 0..=crate::registry::NOTICE_BACKLOG {
        reg.put_role(role(&format!("r{i}"), "pki"));
    }
    assert_eq!(notices.next().await, Some(Notice::Everything));
    assert!(Notice::Everything.concerns(None, None));
    assert!(Notice::Mount("pki".into()).concerns(Some("pki"), Some("web")));
    assert!(!Notice::Mount("pki".into()).concerns(Some("other"), Some("pki")));
    assert!(Notice::Role("web".into()).concerns(None, Some("web")));
}

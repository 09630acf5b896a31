#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use std::collections::BTreeMap;
use time::OffsetDateTime;

fn record(id: &str) -> VolumeRecord {
    VolumeRecord {
        version: RECORD_VERSION,
        volume_id: id.into(),
        target_path: "/var/lib/kubelet/pods/u/volumes/kubernetes.io~csi/v/mount".into(),
        pod: PodRecord {
            name: "api-0".into(),
            namespace: "shop".into(),
            uid: "u".into(),
            service_account_name: "api".into(),
        },
        attributes: BTreeMap::from([("csi.tlsmint.io/role".into(), "web".into())]),
        volume_mount_group: Some(2000),
        certificate: CertificateRecord {
            serial: "01:02".into(),
            not_before: OffsetDateTime::UNIX_EPOCH,
            not_after: OffsetDateTime::UNIX_EPOCH + time::Duration::hours(1),
        },
    }
}

fn temp_store(name: &str) -> (PathBuf, Store) {
    let dir = std::env::temp_dir().join(format!("tlsmint-csi-store-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let store = Store::open(&dir).unwrap();
    (dir, store)
}

#[test]
fn saves_loads_and_removes_records() {
    let (dir, store) = temp_store("roundtrip");
    store.save(&record("csi-b")).unwrap();
    store.save(&record("csi-a")).unwrap();
    let mut changed = record("csi-a");
    changed.certificate.serial = "03".into();
    store.save(&changed).unwrap();
    let (records, errors) = store.load_all().unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(records, vec![changed, record("csi-b")]);
    store.remove("csi-a").unwrap();
    store.remove("csi-a").unwrap();
    assert!(!store.contains("csi-a"));
    assert_eq!(store.load_all().unwrap().0.len(), 1);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn refuses_unknown_versions_and_odd_ids() {
    let (dir, store) = temp_store("versions");
    let mut future = serde_json::to_value(record("csi-x")).unwrap();
    future["version"] = 2.into();
    fs::write(dir.join("volumes/csi-x.json"), future.to_string()).unwrap();
    let (records, errors) = store.load_all().unwrap();
    assert!(records.is_empty());
    assert!(errors[0].to_string().contains("version 2"), "{}", errors[0]);
    for id in ["", "../x", ".hidden", "a/b"] {
        assert!(store.check_id(id).is_err(), "{id}");
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn records_hold_no_secrets() {
    let json = serde_json::to_string(&record("csi-a")).unwrap();
    for word in ["token", "PRIVATE", "key\""] {
        assert!(!json.contains(word), "{word} in {json}");
    }
}

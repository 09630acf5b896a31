//! The optional PKCS#12 file (`csi.tlsmint.io/pkcs12-file`): key, leaf and chain with an
//! empty password, read back with a PKCS#12 parser and, when it is installed, by
//! `openssl pkcs12`; renewed with the other files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::{Bench, Files, until, wait_for};

/// The serial of the leaf in the archive at `path`, checking that its key matches it and
/// that the chain is leaf, intermediate, root.
fn read_p12(path: &Path) -> Vec<u8> {
    let data = std::fs::read(path).unwrap();
    let store =
        p12_keystore::KeyStore::from_pkcs12(&data, "", p12_keystore::Pkcs12ImportPolicy::Strict)
            .unwrap();
    let (_, chain) = store.private_key_chain().expect("a key with its chain");
    assert_eq!(chain.certs().len(), 3, "leaf, intermediate, root");
    let key = tlsmint_ca::PrivateKey::from_der(chain.key().as_der()).unwrap();
    let leaf = chain.certs()[0].as_der();
    let info = tlsmint_ca::x509::parse_certificate(leaf, "leaf").unwrap();
    assert_eq!(
        info.spki_der,
        key.public_key_der(),
        "the archive's key is not its leaf's"
    );
    leaf.to_vec()
}

fn openssl_reads(path: &Path) {
    let Ok(out) = std::process::Command::new("openssl")
        .args(["pkcs12", "-info", "-noout", "-passin", "pass:", "-in"])
        .arg(path)
        .output()
    else {
        eprintln!("openssl is not installed: skipping its check");
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "openssl pkcs12 refused the file: {stderr}"
    );
    // `-info` describes what it read: the MAC and the encrypted key bag.
    assert!(stderr.contains("MAC: sha256"), "{stderr}");
    assert!(stderr.contains("Shrouded Keybag"), "{stderr}");
}

#[tokio::test(start_paused = true)]
async fn pkcs12_file_holds_the_pair_and_is_renewed() {
    let bench = Bench::new("pkcs12").await;
    let (mut driver, _) = bench.start().await;
    let mut pod = bench.pod("web-0");
    pod.set("csi.tlsmint.io/pkcs12-file", "tls.p12");
    pod.set("csi.tlsmint.io/ttl", "1h");
    driver.publish(&pod, bench.clock).await.unwrap();
    let p12 = pod.target.join("tls.p12");
    let mode = std::fs::metadata(&p12).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o400, "the archive holds the key");
    let first = Files::read(&pod.target);
    assert_eq!(
        read_p12(&p12),
        first.leaf_der,
        "the archive's leaf is not tls.crt's"
    );
    openssl_reads(&p12);

    let due = driver.manager.renewal_due(&pod.volume_id).unwrap();
    driver
        .kubelet_for(&pod, bench.clock, until(bench.clock, due))
        .await;
    assert!(wait_for(Duration::from_secs(5), || bench.sign_calls() == 2).await);
    let renewed = wait_for(Duration::from_secs(5), || {
        Files::read(&pod.target).serial != first.serial
    })
    .await;
    assert!(renewed);
    let second = Files::read(&pod.target);
    assert_eq!(
        read_p12(&p12),
        second.leaf_der,
        "the archive was not renewed"
    );
    driver.stop().await;
}

#[tokio::test(start_paused = true)]
async fn no_pkcs12_file_unless_asked() {
    let bench = Bench::new("nopkcs12").await;
    let (mut driver, _) = bench.start().await;
    let pod = bench.pod("web-0");
    driver.publish(&pod, bench.clock).await.unwrap();
    let names: Vec<String> = std::fs::read_dir(&pod.target)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with(".."))
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, ["bundle.pem", "ca.crt", "tls.crt", "tls.key"]);
    driver.stop().await;
}

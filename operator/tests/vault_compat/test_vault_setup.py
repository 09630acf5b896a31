"""The two setup scripts of Vault's PKI tutorial, command for command, through hvac
against `tlsmint-operator dev --empty` (nothing preloaded, as `vault server -dev`):

  root only:   secrets enable pki, secrets tune, root/generate/internal, config/urls,
               a role, issue;
  root + int:  secrets enable pki_int, tune, intermediate/generate/internal,
               root/sign-intermediate format=pem_bundle, intermediate/set-signed,
               a role, issue, revoke, tidy.

hvac sends what the vault CLI sends for these commands (POST sys/mounts/<path>,
POST <mount>/roles/<name>, ...). Every certificate is checked with `cryptography`.
"""

import datetime

import hvac
import hvac.exceptions
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from conftest import ROOT_TOKEN, Dev, fake_sa_jwt


@pytest.fixture(scope="module")
def empty():
    server = Dev(extra=("--empty",))
    yield server
    server.stop()


def root_client(server):
    return hvac.Client(url=server.url, token=ROOT_TOKEN)


def pem(text):
    return x509.load_pem_x509_certificate(text.encode())


def test_the_banner_says_there_is_nothing_yet(empty):
    assert any("No mounts yet" in line for line in empty.banner), empty.banner
    client = root_client(empty)
    assert client.sys.list_mounted_secrets_engines()["data"] == {}


def test_root_then_intermediate_tutorial(empty):
    vault = root_client(empty)
    # --- root CA (pki) ---
    vault.sys.enable_secrets_engine(backend_type="pki", path="pki")
    vault.sys.tune_mount_configuration(path="pki", max_lease_ttl="87600h")
    root = vault.secrets.pki.generate_root(
        type="internal", common_name="example.com",
        extra_params={"issuer_name": "root-2023", "ttl": "87600h"}, mount_point="pki")["data"]
    root_cert = pem(root["certificate"])
    assert root_cert.subject.rfc4514_string() == "CN=example.com"
    root_cert.verify_directly_issued_by(root_cert)
    assert "private_key" not in root
    assert root["issuer_name"] == "root-2023" and root["issuer_id"]
    life = root_cert.not_valid_after_utc - root_cert.not_valid_before_utc
    assert abs(life.total_seconds() - 87600 * 3600) < 120
    # The mount lists and reads as Vault shows it, with the tuned max lease TTL.
    mounts = vault.sys.list_mounted_secrets_engines()["data"]
    assert mounts["pki/"]["type"] == "pki"
    assert mounts["pki/"]["config"]["max_lease_ttl"] == 87600 * 3600
    issuer = vault.secrets.pki.read_issuer("root-2023", mount_point="pki")["data"]
    assert issuer["issuer_name"] == "root-2023"
    vault.secrets.pki.set_urls({
        "issuing_certificates": f"{empty.url}/v1/pki/ca",
        "crl_distribution_points": f"{empty.url}/v1/pki/crl",
    }, mount_point="pki")
    urls = vault.secrets.pki.read_urls(mount_point="pki")["data"]
    assert urls["issuing_certificates"] == [f"{empty.url}/v1/pki/ca"]
    vault.secrets.pki.create_or_update_role("2023-servers", {"allow_any_name": True},
                                            mount_point="pki")
    leaf = vault.secrets.pki.generate_certificate(
        "2023-servers", "test.example.com", extra_params={"ttl": "24h"}, mount_point="pki")["data"]
    cert = pem(leaf["certificate"])
    cert.verify_directly_issued_by(root_cert)
    # The URLs written into config/urls are in the leaf (AIA, CRL DP).
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [d.access_location.value for d in aia] == [f"{empty.url}/v1/pki/ca"]
    # A role written through the Vault API gets Vault's default key: RSA 2048.
    assert leaf["private_key_type"] == "rsa"
    assert cert.public_key().key_size == 2048

    # --- intermediate CA (pki_int), signed by the root ---
    vault.sys.enable_secrets_engine(backend_type="pki", path="pki_int")
    vault.sys.tune_mount_configuration(path="pki_int", max_lease_ttl="43800h")
    csr = vault.secrets.pki.generate_intermediate(
        type="internal", common_name="example.com Intermediate Authority",
        extra_params={"issuer_name": "example-dot-com-intermediate"},
        mount_point="pki_int")["data"]["csr"]
    assert csr.startswith("-----BEGIN CERTIFICATE REQUEST-----")
    # Not signed yet: the mount exists and says it has no CA.
    not_ready = requests.get(f"{empty.url}/v1/pki_int/cert/ca", timeout=10,
                             headers={"X-Vault-Token": ROOT_TOKEN})
    assert not_ready.status_code == 503, not_ready.text
    signed = vault.secrets.pki.sign_intermediate(
        csr, "example.com Intermediate Authority",
        extra_params={"issuer_ref": "root-2023", "format": "pem_bundle", "ttl": "43800h"},
        mount_point="pki")["data"]
    # pem_bundle: the certificate, then the issuing CA.
    assert signed["certificate"].count("BEGIN CERTIFICATE") == 2
    int_cert = pem(signed["certificate"])
    int_cert.verify_directly_issued_by(root_cert)
    assert int_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # The intermediate's lifetime is cut to the root's.
    assert int_cert.not_valid_after_utc <= root_cert.not_valid_after_utc
    set_signed = vault.secrets.pki.set_signed_intermediate(signed["certificate"],
                                                           mount_point="pki_int")
    assert set_signed["data"]["imported_issuers"]
    vault.secrets.pki.create_or_update_role("example-dot-com", {
        "issuer_ref": "default", "allowed_domains": "example.com",
        "allow_subdomains": True, "max_ttl": "720h", "key_type": "ec",
    }, mount_point="pki_int")
    role = vault.secrets.pki.read_role("example-dot-com", mount_point="pki_int")["data"]
    assert role["allowed_domains"] == ["example.com"] and role["allow_subdomains"] is True
    assert role["max_ttl"] == 720 * 3600 and role["key_type"] == "ec"
    issued = vault.secrets.pki.generate_certificate(
        "example-dot-com", "test.example.com", extra_params={"ttl": "24h"},
        mount_point="pki_int")["data"]
    leaf = pem(issued["certificate"])
    leaf.verify_directly_issued_by(int_cert)
    chain = [pem(c) for c in issued["ca_chain"]]
    assert chain == [int_cert, root_cert]
    lifetime = leaf.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc)
    assert abs(lifetime.total_seconds() - 24 * 3600) < 120
    key = serialization.load_pem_private_key(issued["private_key"].encode(), password=None)
    assert key.public_key().public_numbers() == leaf.public_key().public_numbers()
    # The role's policy holds: a name outside it is 400, as Vault answers it.
    with pytest.raises(hvac.exceptions.InvalidRequest):
        vault.secrets.pki.generate_certificate("example-dot-com", "evil.org",
                                               mount_point="pki_int")
    # Revoke, then tidy and rotate the CRL; the serial is on the CRL.
    vault.secrets.pki.revoke_certificate(issued["serial_number"], mount_point="pki_int")
    tidy = vault.secrets.pki.tidy(mount_point="pki_int")
    assert tidy.status_code == 202
    assert vault.secrets.pki.rotate_crl(mount_point="pki_int")["data"]["success"] is True
    crl = x509.load_pem_x509_crl(requests.get(f"{empty.url}/v1/pki_int/crl/pem", timeout=10).content)
    assert crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None
    assert "no CA yet" in not_ready.text


def test_refusals_name_the_problem_and_change_nothing(empty):
    vault = root_client(empty)
    vault.sys.enable_secrets_engine(backend_type="pki", path="refusals")
    # Twice: the path is taken.
    with pytest.raises(hvac.exceptions.InvalidRequest) as twice:
        vault.sys.enable_secrets_engine(backend_type="pki", path="refusals")
    assert "already in use" in str(twice.value)
    # Another engine: tlsmint is only PKI.
    with pytest.raises(hvac.exceptions.InvalidRequest) as kv:
        vault.sys.enable_secrets_engine(backend_type="kv", path="secret")
    assert "pki" in str(kv.value)
    # set-signed with no pending key, then with a certificate for another key.
    with pytest.raises(hvac.exceptions.InvalidRequest) as none_pending:
        vault.secrets.pki.set_signed_intermediate("junk", mount_point="refusals")
    assert "intermediate/generate" in str(none_pending.value)
    vault.secrets.pki.generate_intermediate("internal", "Refusals Int", mount_point="refusals",
                                            extra_params={"key_type": "ec"})
    vault.sys.enable_secrets_engine(backend_type="pki", path="other-root")
    other = vault.secrets.pki.generate_root("internal", "Other Root", mount_point="other-root",
                                            extra_params={"key_type": "ec"})["data"]
    with pytest.raises(hvac.exceptions.InvalidRequest) as mismatch:
        vault.secrets.pki.set_signed_intermediate(other["certificate"], mount_point="refusals")
    assert "key" in str(mismatch.value).lower()
    # The pending key survived the refusal: the right certificate is still accepted.
    csr = vault.secrets.pki.generate_intermediate("internal", "Refusals Int", mount_point="refusals",
                                                  extra_params={"key_type": "ec"})
    signed = vault.secrets.pki.sign_intermediate(csr["data"]["csr"], "Refusals Int",
                                                 mount_point="other-root")["data"]
    vault.secrets.pki.set_signed_intermediate(signed["certificate"], mount_point="refusals")
    # A second CA on the same mount is refused: one issuer per mount.
    with pytest.raises(hvac.exceptions.InvalidRequest) as second:
        vault.secrets.pki.generate_root("internal", "Again", mount_point="refusals")
    assert "one issuer per mount" in str(second.value)
    # Bad role fields are refused by name and nothing is stored.
    with pytest.raises(hvac.exceptions.InvalidRequest) as bad:
        vault.secrets.pki.create_or_update_role("r1", {"no_store": False}, mount_point="refusals")
    assert "no_store" in str(bad.value)
    with pytest.raises(hvac.exceptions.InvalidPath):
        vault.secrets.pki.read_role("r1", mount_point="refusals")
    with pytest.raises(hvac.exceptions.InvalidRequest) as bits:
        vault.secrets.pki.create_or_update_role("r1", {"key_type": "rsa", "key_bits": 1024},
                                                mount_point="refusals")
    assert "1024" in str(bits.value)
    # Unknown fields are ignored with Vault's warning.
    made = vault.secrets.pki.create_or_update_role("r1", {"allow_any_name": True, "frob": 1},
                                                   mount_point="refusals")
    assert "frob" in " ".join(made["warnings"])
    # Only the root token configures dev mode; a ServiceAccount token does not.
    sa = hvac.Client(url=empty.url, token=fake_sa_jwt("team-a", "app"))
    with pytest.raises(hvac.exceptions.Forbidden) as not_root:
        sa.secrets.pki.create_or_update_role("r2", {"allow_any_name": True}, mount_point="refusals")
    assert "root token" in str(not_root.value)
    with pytest.raises(hvac.exceptions.Forbidden):
        sa.sys.enable_secrets_engine(backend_type="pki", path="sneaky")
    # No token at all: 403, as Vault answers it.
    anonymous = requests.post(f"{empty.url}/v1/sys/mounts/sneaky", json={"type": "pki"}, timeout=10)
    assert anonymous.status_code == 403, anonymous.text
    assert "sneaky/" not in vault.sys.list_mounted_secrets_engines()["data"]
    # Delete the role, then disable the mount: both gone.
    vault.secrets.pki.delete_role("r1", mount_point="refusals")
    with pytest.raises(hvac.exceptions.InvalidPath):
        vault.secrets.pki.read_role("r1", mount_point="refusals")
    vault.sys.disable_secrets_engine("refusals")
    assert "refusals/" not in vault.sys.list_mounted_secrets_engines()["data"]


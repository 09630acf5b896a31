"""The Vault-compatible API driven by hvac (a real Vault client), against
`tlsmint-operator dev` with the default (Vault tutorial) setup."""

import datetime
import json
import time
import urllib.error
import urllib.request

import hvac
import hvac.exceptions
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import ROOT_TOKEN, fake_sa_jwt


def root_client(dev):
    return hvac.Client(url=dev.url, token=ROOT_TOKEN)


def check_leaf(data, name, ttl_seconds):
    leaf = x509.load_pem_x509_certificate(data["certificate"].encode())
    issuing = x509.load_pem_x509_certificate(data["issuing_ca"].encode())
    leaf.verify_directly_issued_by(issuing)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert name in sans.get_values_for_type(x509.DNSName)
    lifetime = leaf.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc)
    assert abs(lifetime.total_seconds() - ttl_seconds) < 120
    assert data["expiration"] == int(leaf.not_valid_after_utc.timestamp())
    assert data["not_before"] == int(leaf.not_valid_before_utc.timestamp())
    serial = ":".join(f"{b:02x}" for b in leaf.serial_number.to_bytes(16, "big"))
    assert data["serial_number"] == serial
    assert len(data["ca_chain"]) == 2
    return leaf


def test_health(dev):
    status = hvac.Client(url=dev.url).sys.read_health_status(method="GET")
    assert status["initialized"] is True and status["sealed"] is False


def test_kubernetes_login_then_issue(dev):
    client = hvac.Client(url=dev.url)
    login = client.auth.kubernetes.login(role="web-server", jwt=fake_sa_jwt("apps", "web", pod="web-0"))
    assert login["auth"]["metadata"]["service_account_namespace"] == "apps"
    assert login["auth"]["lease_duration"] > 0
    assert client.is_authenticated()
    resp = client.secrets.pki.generate_certificate(
        name="web-server", common_name="api.example.com",
        extra_params={"ttl": "24h"}, mount_point="pki_int")
    for field in ("request_id", "lease_id", "renewable", "lease_duration", "data", "warnings"):
        assert field in resp
    data = resp["data"]
    assert data["private_key_type"] == "ec"
    assert data["private_key"].startswith("-----BEGIN EC PRIVATE KEY-----")
    check_leaf(data, "api.example.com", 24 * 3600)
    # The audit line names the caller and the pod, and never the key.
    time.sleep(0.2)
    logs = dev.logs()
    assert "apps/web" in logs and "web-0" in logs
    assert "PRIVATE KEY" not in logs


def test_token_lookup_self_and_lookup(dev):
    # The root token, as `vault login <root>` and `vault token lookup` see it.
    root = root_client(dev)
    assert root.is_authenticated()
    me = root.auth.token.lookup_self()
    assert me["data"]["policies"] == ["root"]
    assert me["data"]["id"] == ROOT_TOKEN
    assert me["data"]["ttl"] == 0 and me["data"]["expire_time"] is None
    assert me["mount_type"] == "token"
    assert ROOT_TOKEN not in me["data"]["accessor"]
    # A client token from login: its role, identity and remaining lifetime.
    client = hvac.Client(url=dev.url)
    login = client.auth.kubernetes.login(role="web-server", jwt=fake_sa_jwt("apps", "web"))
    token = login["auth"]["client_token"]
    info = client.auth.token.lookup_self()["data"]
    assert info["accessor"] == login["auth"]["accessor"] != ""
    assert info["meta"]["role"] == "web-server"
    assert info["meta"]["service_account_namespace"] == "apps"
    assert info["display_name"] == "kubernetes-apps-web"
    assert info["policies"] == ["default"] and info["path"] == "auth/kubernetes/login"
    assert 0 < info["ttl"] <= login["auth"]["lease_duration"]
    assert info["creation_ttl"] == login["auth"]["lease_duration"]
    expire = datetime.datetime.fromisoformat(info["expire_time"].replace("Z", "+00:00"))
    assert abs(expire.timestamp() - (info["creation_time"] + info["creation_ttl"])) < 2
    # The root token may look up any token; a client token only itself.
    assert root.auth.token.lookup(token)["data"]["meta"]["role"] == "web-server"
    assert client.auth.token.lookup(token)["data"]["id"] == token
    with pytest.raises(hvac.exceptions.Forbidden):
        client.auth.token.lookup(ROOT_TOKEN)
    # A forged or unknown token is not authenticated.
    assert not hvac.Client(url=dev.url, token=token[:-2] + "xx").is_authenticated()
    assert not hvac.Client(url=dev.url, token="not-a-token").is_authenticated()
    with pytest.raises(hvac.exceptions.Forbidden):
        root.auth.token.lookup("not-a-token")
    # No token at all: Vault's 403, and no token text in the log.
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=dev.url).auth.token.lookup_self()
    time.sleep(0.2)
    assert token not in dev.logs()


def test_root_token_issue_with_alt_names(dev):
    resp = root_client(dev).secrets.pki.generate_certificate(
        name="web-server", common_name="www.example.com",
        extra_params={"alt_names": "a.example.com,b.example.com", "ttl": "1h",
                      "private_key_format": "pkcs8"},
        mount_point="pki_int")
    leaf = check_leaf(resp["data"], "www.example.com", 3600)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"a.example.com", "b.example.com"} <= set(sans.get_values_for_type(x509.DNSName))
    assert resp["data"]["private_key"].startswith("-----BEGIN PRIVATE KEY-----")


def test_ttl_above_max_is_clamped_with_a_warning(dev):
    resp = root_client(dev).secrets.pki.generate_certificate(
        name="web-server", common_name="long.example.com",
        extra_params={"ttl": "2000h"}, mount_point="pki_int")
    assert resp["warnings"] and "clamped" in resp["warnings"][0]
    check_leaf(resp["data"], "long.example.com", 720 * 3600)


def test_sign_certificate(dev):
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signed.example.com")]))
           .sign(key, hashes.SHA256()))
    pem = csr.public_bytes(serialization.Encoding.PEM).decode()
    resp = root_client(dev).secrets.pki.sign_certificate(
        name="web-server", csr=pem, common_name="signed.example.com",
        extra_params={"ttl": "2h"}, mount_point="pki_int")
    data = resp["data"]
    assert "private_key" not in data
    leaf = check_leaf(data, "signed.example.com", 2 * 3600)
    assert leaf.public_key().public_numbers() == key.public_key().public_numbers()


def test_read_ca_certificate_and_chain(dev):
    client = hvac.Client(url=dev.url)
    ca = client.secrets.pki.read_ca_certificate(mount_point="pki_int")
    chain = client.secrets.pki.read_ca_certificate_chain(mount_point="pki_int")
    root = client.secrets.pki.read_ca_certificate(mount_point="pki")
    ca_cert = x509.load_pem_x509_certificate(ca.encode())
    root_cert = x509.load_pem_x509_certificate(root.encode())
    ca_cert.verify_directly_issued_by(root_cert)
    assert chain.startswith(ca.strip()) and root.strip() in chain
    der = urllib.request.urlopen(f"{dev.url}/v1/pki_int/ca").read()
    assert x509.load_der_x509_certificate(der) == ca_cert


def test_revoke_then_crl_lists_the_serial(dev):
    client = root_client(dev)
    data = client.secrets.pki.generate_certificate(
        name="web-server", common_name="revoked.example.com", mount_point="pki_int")["data"]
    resp = client.secrets.pki.revoke_certificate(serial_number=data["serial_number"], mount_point="pki_int")
    assert resp["data"]["revocation_time"] > 0
    serial = int(data["serial_number"].replace(":", ""), 16)
    ca = x509.load_pem_x509_certificate(client.secrets.pki.read_ca_certificate(mount_point="pki_int").encode())
    for _ in range(50):
        crl = x509.load_pem_x509_crl(client.secrets.pki.read_crl(mount_point="pki_int").encode())
        if crl.get_revoked_certificate_by_serial_number(serial) is not None:
            break
        time.sleep(0.1)
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    assert crl.is_signature_valid(ca.public_key())
    cert = client.secrets.pki.read_certificate(serial=data["serial_number"], mount_point="pki_int")
    assert cert["data"]["revocation_time"] > 0
    # Revoking again is idempotent.
    again = client.secrets.pki.revoke_certificate(serial_number=data["serial_number"], mount_point="pki_int")
    assert again["data"]["revocation_time"] == resp["data"]["revocation_time"]


def test_errors_use_vaults_status_codes(dev):
    client = root_client(dev)
    # A name outside the role's policy is 400, as Vault answers it (hvac: InvalidRequest),
    # with tlsmint's reason naming the name.
    with pytest.raises(hvac.exceptions.InvalidRequest) as denied:
        client.secrets.pki.generate_certificate(name="web-server", common_name="evil.org", mount_point="pki_int")
    assert "evil.org" in str(denied.value)
    # An unknown role under a mount that exists: Vault's 400 "unknown role".
    with pytest.raises(hvac.exceptions.InvalidRequest) as unknown:
        client.secrets.pki.generate_certificate(name="nope", common_name="a.example.com", mount_point="pki_int")
    assert "nope" in str(unknown.value)
    # A role is served only under its own mount's path: elsewhere it is unknown.
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.secrets.pki.generate_certificate(name="web-server", common_name="a.example.com", mount_point="pki")
    # No such mount at all: 404, "no handler for route".
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.secrets.pki.generate_certificate(name="web-server", common_name="a.example.com", mount_point="nowhere")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.secrets.pki.generate_certificate(name="web-server", common_name="a.example.com",
                                                extra_params={"ttl": "soon"}, mount_point="pki_int")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.secrets.pki.sign_certificate(name="web-server", csr="not a csr",
                                            common_name="a.example.com", mount_point="pki_int")
    anonymous = hvac.Client(url=dev.url)
    anonymous.token = None
    with pytest.raises(hvac.exceptions.Forbidden):
        anonymous.secrets.pki.generate_certificate(name="web-server", common_name="a.example.com", mount_point="pki_int")
    bad = hvac.Client(url=dev.url, token="tlsm.forged.token")
    with pytest.raises(hvac.exceptions.Forbidden):
        bad.secrets.pki.generate_certificate(name="web-server", common_name="a.example.com", mount_point="pki_int")
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=dev.url).auth.kubernetes.login(role="web-server", jwt="garbage")


def test_vault_cli_request_shape(dev):
    """What `vault write pki_int/issue/web-server common_name=api.example.com ttl=24h` sends."""
    body = json.dumps({"common_name": "api.example.com", "ttl": "24h"}).encode()
    req = urllib.request.Request(f"{dev.url}/v1/pki_int/issue/web-server", data=body, method="PUT",
                                 headers={"X-Vault-Token": ROOT_TOKEN, "Content-Type": "application/json"})
    data = json.load(urllib.request.urlopen(req))["data"]
    check_leaf(data, "api.example.com", 24 * 3600)


def test_subjects_are_enforced_per_service_account(restricted):
    allowed = hvac.Client(url=restricted.url)
    allowed.auth.kubernetes.login(role="team-a", jwt=fake_sa_jwt("team-a", "api"))
    resp = allowed.secrets.pki.generate_certificate(
        name="team-a", common_name="svc.team-a.example.com", mount_point="pki")
    assert resp["data"]["serial_number"]
    other = hvac.Client(url=restricted.url)
    other.auth.kubernetes.login(role="team-a", jwt=fake_sa_jwt("team-b", "api"))
    with pytest.raises(hvac.exceptions.Forbidden) as denied:
        other.secrets.pki.generate_certificate(name="team-a", common_name="svc.team-a.example.com",
                                               mount_point="pki")
    assert "team-b/api" in str(denied.value)
    # Revoking by serial is an administrator's right (dev mode: the root token only)...
    with pytest.raises(hvac.exceptions.Forbidden) as no_right:
        other.secrets.pki.revoke_certificate(serial_number=resp["data"]["serial_number"], mount_point="pki")
    assert "revoke-with-key" in str(no_right.value)
    with pytest.raises(hvac.exceptions.Forbidden):
        allowed.secrets.pki.revoke_certificate(serial_number=resp["data"]["serial_number"], mount_point="pki")
    # ...while the holder revokes with the certificate and its key (Vault's revoke-with-key).
    done = allowed.adapter.post("/v1/pki/revoke-with-key", json={
        "certificate": resp["data"]["certificate"], "private_key": resp["data"]["private_key"]})
    assert done["data"]["state"] == "revoked"


def test_refused_requests_still_get_vaults_error_shape(dev):
    """Bodies over the limit and paths that are not UTF-8 are refused before routing;
    the answer is still Vault's {"errors": [...]} with a fitting status."""
    def post(path, body):
        req = urllib.request.Request(f"{dev.url}{path}", data=body, method="POST",
                                     headers={"X-Vault-Token": ROOT_TOKEN})
        try:
            urllib.request.urlopen(req)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())
        raise AssertionError("accepted")
    status, body = post("/v1/pki_int/issue/web-server", b"{" + b" " * (300 * 1024) + b"}")
    assert status == 413 and "request body" in body["errors"][0] and "262144" in body["errors"][0]
    status, body = post("/v1/pki_int/cert/%ff%fe", b"{}")
    assert status == 400 and "request path" in body["errors"][0]
    # Nothing was issued for them, and the server still answers.
    assert hvac.Client(url=dev.url).sys.read_health_status(method="GET")["sealed"] is False


def test_inventory_reads_as_vault_answers_them(dev):
    root = root_client(dev)
    # vault secrets list / hvac: every PKI mount keyed "<path>/".
    mounts = root.sys.list_mounted_secrets_engines()["data"]
    assert mounts["pki/"]["type"] == "pki" and mounts["pki_int/"]["type"] == "pki"
    assert mounts["pki_int/"]["uuid"] != mounts["pki/"]["uuid"]
    tune = root.sys.read_mount_configuration(path="pki_int")["data"]
    assert "max_lease_ttl" in tune and "default_lease_ttl" in tune
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root.sys.read_mount_configuration(path="nowhere")
    # vault list pki_int/roles; vault read pki_int/roles/web-server
    assert root.secrets.pki.list_roles(mount_point="pki_int")["data"]["keys"] == ["web-server"]
    role = root.secrets.pki.read_role("web-server", mount_point="pki_int")["data"]
    assert role["allowed_domains"] == ["example.com"] and role["allow_subdomains"] is True
    assert role["max_ttl"] == 720 * 3600 and role["key_type"] == "ec" and role["key_bits"] == 256
    assert role["server_flag"] is True and role["key_usage"] == ["DigitalSignature"]
    # Unknown role, and a role read under another mount: Vault's bare 404.
    for name, mount in (("nope", "pki_int"), ("web-server", "pki")):
        with pytest.raises(hvac.exceptions.InvalidPath):
            root.secrets.pki.read_role(name, mount_point=mount)
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.secrets.pki.list_roles(mount_point="pki")
    # The LIST verb itself, as the vault CLI's http client may send it.
    req = urllib.request.Request(f"{dev.url}/v1/pki_int/roles", method="LIST",
                                 headers={"X-Vault-Token": ROOT_TOKEN})
    with urllib.request.urlopen(req) as resp:
        assert json.load(resp)["data"]["keys"] == ["web-server"]
    # Config reads.
    urls = root.secrets.pki.read_urls(mount_point="pki")["data"]
    assert set(urls) >= {"issuing_certificates", "crl_distribution_points", "ocsp_servers"}
    crl = root.secrets.pki.read_crl_configuration(mount_point="pki_int")["data"]
    assert crl["disable"] is False and crl["expiry"].endswith("h")
    # Issuers: one per mount, the same id in the list, the read and cert/ca.
    issuers = root.secrets.pki.list_issuers(mount_point="pki_int")["data"]
    (issuer_id,) = issuers["keys"]
    assert issuers["key_info"][issuer_id]["is_default"] is True
    full = root.secrets.pki.read_issuer("default", mount_point="pki_int")["data"]
    assert full["issuer_id"] == issuer_id and len(full["ca_chain"]) == 2
    by_id = hvac.Client(url=dev.url).read(f"pki_int/issuer/{issuer_id}/json")["data"]
    assert by_id["certificate"] == full["certificate"]
    with urllib.request.urlopen(f"{dev.url}/v1/pki_int/issuer/default/der") as resp:
        der = resp.read()
    intermediate = x509.load_der_x509_certificate(der)
    assert intermediate.public_bytes(serialization.Encoding.PEM).decode().strip() == full["certificate"]
    ski = intermediate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert full["key_id"] == ":".join(f"{b:02x}" for b in ski)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root.secrets.pki.read_issuer("no-such-issuer", mount_point="pki_int")
    # authority_key_id on issue and on cert/ca, as Vault 1.16+ returns it.
    issued = root.secrets.pki.generate_certificate(
        name="web-server", common_name="aki.example.com", mount_point="pki_int")["data"]
    assert issued["authority_key_id"] == full["key_id"]
    ca = root.secrets.pki.read_certificate("ca", mount_point="pki_int")["data"]
    root_ca = root.secrets.pki.read_issuer("default", mount_point="pki")["data"]
    assert ca["authority_key_id"] == root_ca["key_id"] and ca["issuer_id"] == issuer_id
    # vault list pki_int/certs: the CA and what this replica issued, colon hex.
    certs = root.secrets.pki.list_certificates(mount_point="pki_int")["data"]["keys"]
    assert issued["serial_number"] in certs and full["serial_number"] in certs
    # Reads that need a token refuse without one, as Vault does.
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=dev.url).secrets.pki.list_roles(mount_point="pki_int")
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=dev.url).sys.list_mounted_secrets_engines()

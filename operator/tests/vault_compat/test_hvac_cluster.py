"""hvac (a real Vault client) against the operator installed with `helm install` on the
local cluster: two replicas on the kubelet, both serving the Vault-compatible API over
TLS on the node's loopback, real ServiceAccount tokens verified by TokenReview against
the real API server, revocations in ConfigMaps.

Runs when TLSMINT_HVAC_CLUSTER=1 (run-api-tests sets it when a cluster and the image are
there) with KUBECONFIG, K8S_BIN (kubectl, helm) and TLSMINT_IMAGE (scripts/build-image)
in the environment; skipped otherwise. Everything it creates is deleted at the end.
"""

import datetime
import json
import os
import pathlib
import secrets
import ssl
import subprocess
import tempfile
import time
import urllib.request

import hvac
import hvac.exceptions
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from conftest import free_port

REPO = pathlib.Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "tlsmint"

pytestmark = pytest.mark.skipif(
    os.environ.get("TLSMINT_HVAC_CLUSTER") != "1",
    reason="needs the local cluster and the image (TLSMINT_HVAC_CLUSTER=1, see run-api-tests)",
)


def tool(name):
    return str(pathlib.Path(os.environ["K8S_BIN"]) / name)


def run(*args, stdin=None, check=True):
    out = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=180)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout


def kubectl(*args, stdin=None, check=True):
    return run(tool("kubectl"), *args, stdin=stdin, check=check)


def wait(what, probe, timeout=120, interval=0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(interval)


class Cluster:
    """A helm release of tlsmint in its own namespace, with a Root and an Intermediate
    mount and one role for the ServiceAccount `web` of that namespace."""

    def __init__(self):
        self.id = secrets.token_hex(3)
        self.ns = f"hvac-{self.id}"
        self.release = f"hvac-{self.id}"
        self.label = f"e2e.tlsmint.dev/operator={self.ns}"
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.url = f"https://127.0.0.1:{self.http_port}"
        self.root_path = f"{self.ns}/pki"
        self.int_path = f"{self.ns}/pki_int"
        self.role = f"{self.ns}-web"
        self.objects = f"""
apiVersion: pki.tlsmint.io/v1alpha1
kind: PkiMount
metadata: {{name: {self.ns}-pki, labels: {{e2e.tlsmint.dev/operator: {self.ns}}}}}
spec: {{type: Root, path: {self.root_path}, subject: {{commonName: hvac Root CA}}}}
---
apiVersion: pki.tlsmint.io/v1alpha1
kind: PkiMount
metadata: {{name: {self.ns}-pki-int, labels: {{e2e.tlsmint.dev/operator: {self.ns}}}}}
spec:
  type: Intermediate
  path: {self.int_path}
  parentRef: {{name: {self.ns}-pki}}
  subject: {{commonName: hvac Intermediate CA}}
---
apiVersion: pki.tlsmint.io/v1alpha1
kind: IssuerRole
metadata: {{name: {self.role}, labels: {{e2e.tlsmint.dev/operator: {self.ns}}}}}
spec:
  mountRef: {{name: {self.ns}-pki-int}}
  subjects: [{{namespace: {self.ns}, serviceAccount: web}}]
  allowedDomains: [example.com]
  allowSubdomains: true
  maxTTL: 720h
"""
        self.objects_file = pathlib.Path(tempfile.gettempdir()) / f"tlsmint-{self.ns}.yaml"
        self.objects_file.write_text(self.objects)
        self.cacert = pathlib.Path(tempfile.gettempdir()) / f"tlsmint-{self.ns}-ca.crt"

    def up(self):
        image = os.environ["TLSMINT_IMAGE"]
        repository, tag = image.rsplit(":", 1)
        kubectl("create", "namespace", self.ns)
        for sa in ("web", "intruder"):
            kubectl("-n", self.ns, "create", "serviceaccount", sa)
        run(tool("helm"), "install", self.release, str(CHART), "-n", self.ns,
            "-f", str(CHART / "values-local.yaml"),
            "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
            "--set", f"operator.adminPort={free_port()}",
            "--set", f"operator.labelSelector={self.label}",
            "--set", "operator.logFormat=json",
            "--set", f"api.httpPort={self.http_port}", "--set", f"api.grpcPort={self.grpc_port}",
            "--set", "api.revocationRefresh=2s")
        kubectl("apply", "-f", str(self.objects_file))
        kubectl("-n", self.ns, "rollout", "status", f"deployment/{self.release}-tlsmint-operator",
                "--timeout=180s")
        kubectl("wait", "--for=condition=Ready", "--timeout=120s",
                f"pkimount/{self.ns}-pki", f"pkimount/{self.ns}-pki-int", f"pkirole/{self.role}")
        ca = wait("ConfigMap tlsmint-api-ca", lambda: kubectl(
            "-n", self.ns, "get", "configmap", "tlsmint-api-ca", "-o", "jsonpath={.data.ca\\.crt}",
            check=False))
        self.cacert.write_text(ca)

    def down(self):
        kubectl("delete", "-f", str(self.objects_file), "--ignore-not-found", "--wait=false", check=False)
        run(tool("helm"), "uninstall", self.release, "-n", self.ns, "--wait", check=False)
        kubectl("delete", "namespace", self.ns, "--wait=false", check=False)
        self.objects_file.unlink(missing_ok=True)
        self.cacert.unlink(missing_ok=True)

    def token(self, sa, audience="tlsmint"):
        return kubectl("-n", self.ns, "create", "token", sa, f"--audience={audience}",
                       "--duration=10m").strip()

    def client(self, token=None):
        """A new hvac client: a new HTTPS connection, so the kernel may pick either replica."""
        return hvac.Client(url=self.url, token=token, verify=str(self.cacert))

    def login(self, sa="web"):
        client = self.client()
        client.auth.kubernetes.login(role=self.role, jwt=self.token(sa))
        return client

    def pods(self):
        out = kubectl("-n", self.ns, "get", "pods", "-l",
                      f"app.kubernetes.io/instance={self.release},app.kubernetes.io/component=operator",
                      "-o", "jsonpath={.items[*].metadata.name}")
        return out.split()

    def audit_lines(self, pod):
        lines = []
        for line in kubectl("-n", self.ns, "logs", pod).splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("target") == "tlsmint::audit":
                lines.append(record)
        return lines


@pytest.fixture(scope="module")
def cluster():
    c = Cluster()
    try:
        c.up()
        yield c
    finally:
        c.down()


def issue(client, cluster, common_name, **extra):
    # Both replicas load the mounts from their own watch; give a lagging one a moment
    # (mount path not there yet: 404; role not there yet: 400 "... not found";
    # mount not Ready there yet: 503). A policy denial (also 400) is not retried.
    deadline = time.monotonic() + 15
    while True:
        try:
            return client.secrets.pki.generate_certificate(
                name=cluster.role, common_name=common_name, extra_params=extra,
                mount_point=cluster.int_path)
        except (hvac.exceptions.InvalidPath, hvac.exceptions.VaultDown,
                hvac.exceptions.InvalidRequest) as e:
            lagging = not isinstance(e, hvac.exceptions.InvalidRequest) or "not found" in str(e)
            if not lagging or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def serial_int(colon_hex):
    return int(colon_hex.replace(":", ""), 16)


def test_health_over_tls_with_the_published_ca(cluster):
    status = cluster.client().sys.read_health_status(method="GET")
    assert status["initialized"] is True and status["sealed"] is False


def test_login_with_a_real_serviceaccount_token_then_issue(cluster):
    client = cluster.client()
    login = client.auth.kubernetes.login(role=cluster.role, jwt=cluster.token("web"))
    assert login["auth"]["metadata"]["service_account_namespace"] == cluster.ns
    assert login["auth"]["metadata"]["service_account_name"] == "web"
    assert 0 < login["auth"]["lease_duration"] <= 3600
    resp = issue(client, cluster, "api.example.com", ttl="24h")
    for field in ("request_id", "lease_id", "renewable", "lease_duration", "data", "warnings"):
        assert field in resp
    data = resp["data"]
    leaf = x509.load_pem_x509_certificate(data["certificate"].encode())
    chain = [x509.load_pem_x509_certificate(c.encode()) for c in data["ca_chain"]]
    assert len(chain) == 2
    leaf.verify_directly_issued_by(chain[0])
    chain[0].verify_directly_issued_by(chain[1])
    root = x509.load_pem_x509_certificate(
        cluster.client().secrets.pki.read_ca_certificate(mount_point=cluster.root_path).encode())
    assert chain[1] == root
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["api.example.com"]
    lifetime = leaf.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc)
    assert abs(lifetime.total_seconds() - 24 * 3600) < 120
    assert data["expiration"] == int(leaf.not_valid_after_utc.timestamp())
    assert serial_int(data["serial_number"]) == leaf.serial_number
    assert data["private_key_type"] == "ec"
    key = serialization.load_pem_private_key(data["private_key"].encode(), password=None)
    assert key.public_key().public_numbers() == leaf.public_key().public_numbers()


def test_sign_certificate(cluster):
    client = cluster.login()
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signed.example.com")]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName("signed.example.com")]), critical=False)
           .sign(key, hashes.SHA256()))
    pem = csr.public_bytes(serialization.Encoding.PEM).decode()
    data = client.secrets.pki.sign_certificate(
        name=cluster.role, csr=pem, common_name="signed.example.com",
        extra_params={"ttl": "1h"}, mount_point=cluster.int_path)["data"]
    leaf = x509.load_pem_x509_certificate(data["certificate"].encode())
    assert leaf.public_key().public_numbers() == key.public_key().public_numbers()
    assert "private_key" not in data


def test_ca_certificate_chain_and_crl_without_a_token(cluster):
    anonymous = cluster.client()
    ca = anonymous.secrets.pki.read_ca_certificate(mount_point=cluster.int_path)
    chain = anonymous.secrets.pki.read_ca_certificate_chain(mount_point=cluster.int_path)
    root = anonymous.secrets.pki.read_ca_certificate(mount_point=cluster.root_path)
    ca_cert = x509.load_pem_x509_certificate(ca.encode())
    ca_cert.verify_directly_issued_by(x509.load_pem_x509_certificate(root.encode()))
    assert chain.startswith(ca.strip()) and root.strip() in chain
    # The PkiMount's status publishes the same certificate.
    status_pem = kubectl("get", "pkimount", f"{cluster.ns}-pki-int", "-o", "jsonpath={.status.certificate}")
    assert x509.load_pem_x509_certificate(status_pem.encode()) == ca_cert
    crl = x509.load_pem_x509_crl(anonymous.secrets.pki.read_crl(mount_point=cluster.int_path).encode())
    assert crl.is_signature_valid(ca_cert.public_key())


def ocsp_status(cluster, leaf, issuer):
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA1()).build()
    body = request.public_bytes(serialization.Encoding.DER)
    context = ssl.create_default_context(cafile=str(cluster.cacert))
    http = urllib.request.Request(f"{cluster.url}/v1/{cluster.int_path}/ocsp", data=body, method="POST",
                                  headers={"Content-Type": "application/ocsp-request"})
    response = ocsp.load_der_ocsp_response(urllib.request.urlopen(http, context=context).read())
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    return response.certificate_status


def test_revoke_reaches_the_crl_and_ocsp_of_every_replica(cluster):
    client = cluster.login()
    data = issue(client, cluster, "revoked.example.com")["data"]
    leaf = x509.load_pem_x509_certificate(data["certificate"].encode())
    issuer = x509.load_pem_x509_certificate(data["issuing_ca"].encode())
    assert ocsp_status(cluster, leaf, issuer) == ocsp.OCSPCertStatus.GOOD
    # Revoking by serial needs the RBAC revoke right, which the web ServiceAccount lacks;
    # as the certificate's holder it revokes with its key (Vault's revoke-with-key).
    with pytest.raises(hvac.exceptions.Forbidden):
        client.secrets.pki.revoke_certificate(serial_number=data["serial_number"],
                                              mount_point=cluster.int_path)
    resp = client.adapter.post(f"/v1/{cluster.int_path}/revoke-with-key", json={
        "certificate": data["certificate"], "private_key": data["private_key"]})
    assert resp["data"]["revocation_time"] > 0
    # The revocation is in a ConfigMap; each replica re-reads those every 2 s (the chart's
    # api.revocationRefresh here), so fresh connections to either replica see it soon.
    def on_crl():
        crl = x509.load_pem_x509_crl(
            cluster.client().secrets.pki.read_crl(mount_point=cluster.int_path).encode())
        return crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None
    for _ in range(6):
        wait("the serial on the CRL", on_crl, timeout=20)
    for _ in range(6):
        wait("OCSP to answer revoked",
             lambda: ocsp_status(cluster, leaf, issuer) == ocsp.OCSPCertStatus.REVOKED, timeout=20)
    stored = kubectl("-n", cluster.ns, "get", "configmaps", "-o", "json")
    assert data["serial_number"].replace(":", "") in stored.replace(":", "").lower()


def test_denials_get_vaults_errors(cluster):
    # A ServiceAccount that is not among the role's subjects.
    intruder = cluster.login("intruder")
    with pytest.raises(hvac.exceptions.Forbidden) as denied:
        issue(intruder, cluster, "api.example.com")
    assert f"{cluster.ns}/intruder" in str(denied.value)
    web = cluster.login()
    # Outside the role's policy, and an unknown role: 400, as Vault answers them.
    with pytest.raises(hvac.exceptions.InvalidRequest) as outside:
        issue(web, cluster, "evil.org")
    assert "evil.org" in str(outside.value)
    with pytest.raises(hvac.exceptions.InvalidRequest) as unknown:
        web.secrets.pki.generate_certificate(name="nope", common_name="a.example.com",
                                             mount_point=cluster.int_path)
    assert "nope" in str(unknown.value)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        web.secrets.pki.sign_certificate(name=cluster.role, csr="not a csr",
                                         common_name="a.example.com", mount_point=cluster.int_path)
    # Tokens the API server does not accept for audience tlsmint.
    with pytest.raises(hvac.exceptions.Forbidden):
        cluster.client().auth.kubernetes.login(role=cluster.role, jwt=cluster.token("web", audience="other"))
    with pytest.raises(hvac.exceptions.Forbidden):
        cluster.client().auth.kubernetes.login(role=cluster.role, jwt="garbage")
    with pytest.raises(hvac.exceptions.Forbidden):
        cluster.client(token="tlsm.forged.token").secrets.pki.generate_certificate(
            name=cluster.role, common_name="a.example.com", mount_point=cluster.int_path)


def test_both_replicas_serve_and_audit(cluster):
    pods = cluster.pods()
    assert len(pods) == 2, pods
    marker = f"spread-{cluster.id}"
    serials = set()
    for i in range(20):
        data = issue(cluster.login(), cluster, f"{marker}-{i}.example.com", ttl="10m")["data"]
        serials.add(data["serial_number"])
    per_pod = {}
    for pod in pods:
        lines = [r for r in cluster.audit_lines(pod)
                 if r.get("audit.event") == "issued" and marker in r.get("x509.names", "")]
        per_pod[pod] = lines
        for record in lines:
            assert record["caller"] == f"{cluster.ns}/web"
            assert record["role"] == cluster.role
            assert "PRIVATE KEY" not in json.dumps(record)
    issued = {r["x509.serial"] for lines in per_pod.values() for r in lines}
    assert {s.replace(":", "").lower() for s in serials} <= {s.replace(":", "").lower() for s in issued}
    assert all(per_pod.values()), {pod: len(lines) for pod, lines in per_pod.items()}


def test_setup_writes_name_the_kubectl_apply_and_inventory_reads_work(cluster):
    web = cluster.login()
    # Reads of what the cluster holds, with a real token.
    mounts = web.sys.list_mounted_secrets_engines()["data"]
    assert mounts[cluster.int_path + "/"]["type"] == "pki"
    roles = web.secrets.pki.list_roles(mount_point=cluster.int_path)["data"]["keys"]
    assert cluster.role in roles
    role = web.secrets.pki.read_role(cluster.role, mount_point=cluster.int_path)["data"]
    assert "allowed_domains" in role and role["no_store"] is True
    # Writes of mounts, CAs and roles are Kubernetes objects here: 405 and the kubectl.
    for path, body in [
        ("sys/mounts/other-pki", {"type": "pki"}),
        (f"{cluster.int_path}/roles/{cluster.role}", {"max_ttl": "1h"}),
        (f"{cluster.root_path}/root/generate/internal", {"common_name": "x"}),
        (f"{cluster.int_path}/config/urls", {"ocsp_servers": "http://x"}),
    ]:
        resp = requests.post(f"{cluster.url}/v1/{path}", json=body, timeout=10,
                             headers={"X-Vault-Token": web.token}, verify=str(cluster.cacert))
        assert resp.status_code == 405, (path, resp.status_code, resp.text)
        text = resp.json()["errors"][0]
        assert "kubectl" in text, text
    # The role is unchanged.
    again = web.secrets.pki.read_role(cluster.role, mount_point=cluster.int_path)["data"]
    assert again["max_ttl"] == role["max_ttl"]
    # tidy works in a cluster, for a mount's administrators only (the revoke right).
    with pytest.raises(hvac.exceptions.Forbidden):
        web.secrets.pki.tidy(mount_point=cluster.int_path)

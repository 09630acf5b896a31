"""Fixtures: a `tlsmint-operator dev` process on free loopback ports.

The binary comes from $TLSMINT_OPERATOR_BIN (run-api-tests sets it), else
target/debug/tlsmint-operator. Each fixture stops its process at the end.
"""

import base64
import json
import os
import pathlib
import socket
import subprocess
import tempfile
import threading
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]
ROOT_TOKEN = "hvac-root-token"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def binary():
    env = os.environ.get("TLSMINT_OPERATOR_BIN")
    if env:
        return env
    target = os.environ.get("CARGO_TARGET_DIR", str(REPO / "target"))
    return str(pathlib.Path(target) / "debug" / "tlsmint-operator")


class Dev:
    def __init__(self, config_dir=None, extra=()):
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        args = [
            binary(), "dev",
            "--dev-root-token-id", ROOT_TOKEN,
            "--http-addr", f"127.0.0.1:{self.http_port}",
            "--grpc-addr", f"127.0.0.1:{self.grpc_port}",
            "--crl-batch-window", "200ms",
            "--log-format", "json",
            *extra,
        ]
        if config_dir:
            args += ["--config", str(config_dir)]
        self.log = open(pathlib.Path(tempfile.gettempdir()) / f"tlsmint-dev-{self.http_port}.log", "w+")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.banner = []
        for line in self.proc.stdout:
            self.banner.append(line)
            if line.startswith("Root Token:"):
                break
        assert any(l.startswith("Root Token: " + ROOT_TOKEN) for l in self.banner), self.banner
        # Logs go to stdout after the banner: keep draining them into the log file.
        self.drain = threading.Thread(target=self._drain, daemon=True)
        self.drain.start()

    def _drain(self):
        for line in self.proc.stdout:
            self.log.write(line)
            self.log.flush()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.drain.join(timeout=5)
        self.log.close()

    def logs(self):
        return pathlib.Path(self.log.name).read_text()


@pytest.fixture(scope="module")
def dev():
    server = Dev()
    yield server
    server.stop()


RESTRICTED = """
apiVersion: pki.tlsmint.io/v1alpha1
kind: PkiMount
metadata: {name: pki}
spec: {type: Root, subject: {commonName: Restricted Root}}
---
apiVersion: pki.tlsmint.io/v1alpha1
kind: IssuerRole
metadata: {name: team-a}
spec:
  mountRef: {name: pki}
  subjects: [{namespace: team-a, serviceAccount: "*"}]
  allowedDomains: ["{{namespace}}.example.com"]
  allowSubdomains: true
"""


@pytest.fixture(scope="module")
def restricted(tmp_path_factory):
    d = tmp_path_factory.mktemp("restricted")
    (d / "roles.yaml").write_text(RESTRICTED)
    server = Dev(config_dir=d)
    yield server
    server.stop()


def fake_sa_jwt(namespace, name, pod=None):
    """An unsigned ServiceAccount-token-shaped JWT (dev mode reads its claims)."""
    enc = lambda obj: base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    claims = {
        "iss": "https://kubernetes.default.svc",
        "sub": f"system:serviceaccount:{namespace}:{name}",
        "aud": ["tlsmint"],
        "exp": int(time.time()) + 3600,
        "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": "u"}},
    }
    if pod:
        claims["kubernetes.io"]["pod"] = {"name": pod, "uid": "pod-uid-1"}
    return f"{enc({'alg': 'RS256', 'kid': 'dev'})}.{enc(claims)}.c2lnbmF0dXJl"

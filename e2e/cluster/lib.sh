# shellcheck shell=bash disable=SC2034 # the variables are used by the sourcing scripts
# Shared settings and helpers for e2e/cluster/{install-deps,up,down,ci-smoke}.
# Sourced, not executed. Everything here is derived from files in this folder,
# so install-deps and up always agree on where the cached binaries are.

E2E_CLUSTER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
E2E_REPO_ROOT="$(cd "$E2E_CLUSTER_DIR/../.." && pwd)"

# Caches (outside the repo, survive `down`): binaries, images, Go caches.
E2E_CACHE="${TLSMINT_E2E_CACHE:-/var/cache/tlsmint-e2e}"
# Per-cluster state (PKI, data, logs, containerd/kubelet roots). `down` removes it.
E2E_STATE="${TLSMINT_E2E_STATE:-/tmp/tlsmint-e2e}"

# Versions come from the pinned Go modules under go/.
# go_mod_version DIR MODULE: the version of MODULE required in go/DIR/go.mod.
go_mod_version() {
	awk -v m="$2" '($1 == "require" && $2 == m) { print $3; exit } ($1 == m && $2 ~ /^v/) { print $2; exit }' \
		"$E2E_CLUSTER_DIR/go/$1/go.mod"
}
K8S_VERSION="$(go_mod_version kubernetes k8s.io/kubernetes)"
HELM_VERSION="$(go_mod_version helm helm.sh/helm/v3)"
ETCD_VERSION="$(go_mod_version etcd go.etcd.io/etcd/server/v3)"
CSI_SANITY_VERSION="$(go_mod_version csi-sanity github.com/kubernetes-csi/csi-test/v5)"
[[ -n "$K8S_VERSION" && -n "$HELM_VERSION" && -n "$ETCD_VERSION" && -n "$CSI_SANITY_VERSION" ]] ||
	{ echo "e2e/cluster/lib.sh: cannot read the versions from go/*/go.mod" >&2; exit 1; }

# Image names. Never :latest (pods use imagePullPolicy Never/IfNotPresent and
# nothing can ever be pulled).
PAUSE_IMAGE="tlsmint.local/pause:1.0"
BUSYBOX_IMAGE_REPO="tlsmint.local/busybox"

# Hash of the files that determine the build: a change in any of them gives a
# new cache folder, so stale binaries are never reused.
e2e_hash() {
	(cd "$E2E_CLUSTER_DIR" && cat -- "$@" | sha256sum | cut -c1-12)
}

E2E_BIN_KEY="$(e2e_hash go/kubernetes/go.mod go/kubernetes/go.sum go/helm/go.mod go/helm/go.sum go/etcd/go.mod go/etcd/go.sum go/etcd/main.go build.env)"
# K8S_BIN: kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
# kubectl, helm, etcd.
E2E_BIN_DIR="$E2E_CACHE/bin-k8s-$K8S_VERSION-$E2E_BIN_KEY"
# csi-sanity and its stand-in controller (e2e/run-csi-sanity), in a folder of their own
# so that a change to them does not rebuild the Kubernetes binaries.
E2E_CSI_SANITY_KEY="$(e2e_hash go/csi-sanity/go.mod go/csi-sanity/go.sum go/csi-sanity/inline-controller/main.go build.env)"
E2E_CSI_SANITY_DIR="$E2E_CACHE/bin-csi-sanity-$CSI_SANITY_VERSION-$E2E_CSI_SANITY_KEY"
E2E_IMAGES_KEY="$(e2e_hash mkimage.py images/pause.c build.env)"
E2E_IMAGES_DIR="$E2E_CACHE/images-$E2E_IMAGES_KEY"

# Fixed loopback ports of the cluster.
ETCD_PORT="${TLSMINT_E2E_ETCD_PORT:-2379}"
ETCD_PEER_PORT="${TLSMINT_E2E_ETCD_PEER_PORT:-2380}"
APISERVER_PORT=6443
KCM_PORT=10257
SCHEDULER_PORT=10259
KUBELET_PORT=10250
KUBELET_HEALTHZ_PORT=10248

E2E_START_SECONDS="${E2E_START_SECONDS:-$SECONDS}"

# All human-readable output goes to stderr; stdout is reserved for results.
log() {
	printf '[e2e %3ss] %s\n' "$((SECONDS - E2E_START_SECONDS))" "$*" >&2
}

die() {
	printf '[e2e] ERROR: %s\n' "$*" >&2
	exit 1
}

# The PID recorded for NAME, if that process is still ours: its command line
# mentions the state folder (guards against PID reuse).
our_pid() {
	local pid
	pid="$(cat "$E2E_STATE/pids/$1" 2>/dev/null)" || return 1
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	running "$pid" || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$E2E_STATE/" || return 1
	echo "$pid"
}

# True while PID runs. A zombie counts as gone: the processes were started
# in the background by `up`, which has exited, so they are reaped by init,
# which may take its time.
running() {
	local stat
	stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
	stat="${stat##*) }"
	[[ "${stat%% *}" != Z ]]
}

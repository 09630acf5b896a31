#!/usr/bin/env python3
"""Write a single-layer container image tarball from local files.

No registry or Docker engine needed: the output is a docker-archive
(`docker save` layout, the default) or an OCI image layout tarball, and
`ctr -n k8s.io images import FILE` loads either into containerd.

The layer is reproducible: entries are sorted, owned by 0:0 and dated at the
epoch, so the same inputs give the same image ID.

Examples:
  mkimage.py --tag tlsmint.local/pause:1.0 --out pause.tar \\
      --file /pause=./pause:0755 --entrypoint '["/pause"]'
  mkimage.py --tag tlsmint.local/tlsmint:dev --out tlsmint.tar \\
      --dir ./rootfs --entrypoint /usr/local/bin/tlsmint-operator \\
      --env RUST_LOG=info --user 65532:65532

See e2e/cluster/README.md for the full CLI.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shlex
import stat
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field

EPOCH = 0


@dataclass
class Entry:
    """One node of the layer's file tree."""

    kind: str  # "dir", "file" or "symlink"
    mode: int
    source: str | None = None  # host path for files
    target: str | None = None  # link target for symlinks


@dataclass
class Tree:
    entries: dict[str, Entry] = field(default_factory=dict)

    @staticmethod
    def norm(path: str) -> str:
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if any(p == ".." for p in parts):
            raise SystemExit(f"mkimage: '..' not allowed in image path {path!r}")
        return "/".join(parts)

    def ensure_parents(self, path: str) -> None:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            parent = "/".join(parts[:i])
            existing = self.entries.get(parent)
            if existing is None:
                self.entries[parent] = Entry("dir", 0o755)
            elif existing.kind != "dir":
                raise SystemExit(f"mkimage: /{parent} is not a directory")

    def add(self, path: str, entry: Entry) -> None:
        path = self.norm(path)
        if not path:
            return  # the root itself
        self.ensure_parents(path)
        self.entries[path] = entry

    def add_dir_tree(self, host_dir: str, dest: str) -> None:
        if not os.path.isdir(host_dir):
            raise SystemExit(f"mkimage: --dir {host_dir!r} is not a directory")
        for root, dirs, files in os.walk(host_dir):
            dirs.sort()
            rel_root = os.path.relpath(root, host_dir)
            base = dest if rel_root == "." else f"{dest}/{rel_root}"
            if rel_root != ".":
                self.add(base, Entry("dir", stat.S_IMODE(os.lstat(root).st_mode)))
            for name in sorted(dirs + files):
                host = os.path.join(root, name)
                st = os.lstat(host)
                if stat.S_ISLNK(st.st_mode):
                    self.add(f"{base}/{name}", Entry("symlink", 0o777, target=os.readlink(host)))
                    if name in dirs:
                        dirs.remove(name)  # os.walk does not follow it anyway
                elif stat.S_ISREG(st.st_mode):
                    self.add(f"{base}/{name}", Entry("file", stat.S_IMODE(st.st_mode), source=host))
                elif stat.S_ISDIR(st.st_mode):
                    pass  # visited by os.walk
                else:
                    raise SystemExit(f"mkimage: unsupported file type: {host}")


def parse_mode(text: str) -> int:
    return int(text, 8)


def split_spec(spec: str, what: str) -> tuple[str, str]:
    if "=" not in spec:
        raise SystemExit(f"mkimage: {what} wants DEST=VALUE, got {spec!r}")
    dest, value = spec.split("=", 1)
    return dest, value


def parse_command(text: str | None) -> list[str] | None:
    """A JSON array ('["/bin/sh","-c","x"]') or a shell-quoted string."""
    if text is None:
        return None
    text = text.strip()
    if text.startswith("["):
        value = json.loads(text)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SystemExit(f"mkimage: expected a JSON array of strings: {text!r}")
        return value
    return shlex.split(text)


def build_tree(args: argparse.Namespace) -> Tree:
    tree = Tree()
    for spec in args.dir:
        host, _, dest = spec.partition(":")
        tree.add_dir_tree(host, dest or "/")
    for spec in args.mkdir:
        path, _, mode = spec.partition(":")
        tree.add(path, Entry("dir", parse_mode(mode) if mode else 0o755))
    for spec in args.file:
        dest, rest = split_spec(spec, "--file")
        # SRC may itself contain ':'; the mode is only taken from a trailing
        # ':NNNN' of octal digits.
        src, mode = rest, None
        head, sep, tail = rest.rpartition(":")
        if sep and tail and all(c in "01234567" for c in tail):
            src, mode = head, parse_mode(tail)
        if not os.path.isfile(src):
            raise SystemExit(f"mkimage: --file source {src!r} is not a file")
        if mode is None:
            mode = stat.S_IMODE(os.stat(src).st_mode)
        tree.add(dest, Entry("file", mode, source=src))
    for spec in args.symlink:
        dest, target = split_spec(spec, "--symlink")
        tree.add(dest, Entry("symlink", 0o777, target=target))
    return tree


def write_layer(tree: Tree, out: io.BufferedIOBase) -> None:
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(tree.entries):
            e = tree.entries[path]
            info = tarfile.TarInfo(path)
            info.mtime = EPOCH
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = e.mode
            if e.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif e.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = e.target or ""
                tar.addfile(info)
            else:
                assert e.source is not None
                info.size = os.path.getsize(e.source)
                with open(e.source, "rb") as f:
                    tar.addfile(info, f)


def sha256_file(path: str) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def image_config(args: argparse.Namespace, diff_id: str) -> dict:
    config: dict = {}
    entrypoint = parse_command(args.entrypoint)
    cmd = parse_command(args.cmd)
    if entrypoint is not None:
        config["Entrypoint"] = entrypoint
    if cmd is not None:
        config["Cmd"] = cmd
    env = list(args.env)
    if not any(e.startswith("PATH=") for e in env):
        env.insert(0, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    config["Env"] = env
    if args.workdir:
        config["WorkingDir"] = args.workdir
    if args.user:
        config["User"] = args.user
    if args.label:
        config["Labels"] = dict(split_spec(label, "--label") for label in args.label)
    created = "1970-01-01T00:00:00Z"
    return {
        "created": created,
        "architecture": args.arch,
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "history": [{"created": created, "created_by": "e2e/cluster/mkimage.py"}],
    }


def canonical(obj: dict) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = EPOCH
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mtime = EPOCH
    info.mode = 0o755
    tar.addfile(info)


def write_docker_archive(out: str, tag: str, layer: str, config: bytes) -> str:
    layer_digest, _ = sha256_file(layer)
    config_digest = hashlib.sha256(config).hexdigest()
    manifest = [
        {
            "Config": f"{config_digest}.json",
            "RepoTags": [tag],
            "Layers": [f"{layer_digest}/layer.tar"],
        }
    ]
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        add_bytes(tar, f"{config_digest}.json", config)
        add_dir(tar, layer_digest)
        tar.add(layer, arcname=f"{layer_digest}/layer.tar", filter=_reset)
        add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
    return config_digest


def write_oci_archive(out: str, tag: str, layer: str, config: bytes) -> str:
    layer_digest, layer_size = sha256_file(layer)
    config_digest = hashlib.sha256(config).hexdigest()
    manifest = canonical(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": f"sha256:{config_digest}",
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": f"sha256:{layer_digest}",
                    "size": layer_size,
                }
            ],
        }
    )
    manifest_digest = hashlib.sha256(manifest).hexdigest()
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": f"sha256:{manifest_digest}",
                "size": len(manifest),
                "annotations": {
                    # containerd names the imported image after this.
                    "io.containerd.image.name": tag,
                    "org.opencontainers.image.ref.name": tag.rsplit(":", 1)[-1],
                },
            }
        ],
    }
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        add_bytes(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add_bytes(tar, "index.json", json.dumps(index).encode())
        add_dir(tar, "blobs")
        add_dir(tar, "blobs/sha256")
        add_bytes(tar, f"blobs/sha256/{config_digest}", config)
        add_bytes(tar, f"blobs/sha256/{manifest_digest}", manifest)
        tar.add(layer, arcname=f"blobs/sha256/{layer_digest}", filter=_reset)
    return config_digest


def _reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o644
    return info


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Image paths are absolute paths inside the image; parents are created 0755.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--tag", required=True, help="image name:tag (never :latest)")
    p.add_argument("--out", required=True, help="tarball to write")
    p.add_argument("--format", choices=("docker", "oci"), default="docker", help="archive layout (default docker)")
    p.add_argument("--dir", action="append", default=[], metavar="HOSTDIR[:DEST]",
                   help="copy a host directory tree into the image (at DEST, default /)")
    p.add_argument("--file", action="append", default=[], metavar="DEST=SRC[:MODE]",
                   help="add one host file at DEST (octal MODE, default: the source's)")
    p.add_argument("--symlink", action="append", default=[], metavar="DEST=TARGET", help="add a symlink")
    p.add_argument("--mkdir", action="append", default=[], metavar="DEST[:MODE]", help="add an empty directory")
    p.add_argument("--entrypoint", help='JSON array (\'["/bin/x","-v"]\') or a shell-quoted string')
    p.add_argument("--cmd", help="default arguments, same forms as --entrypoint")
    p.add_argument("--env", action="append", default=[], metavar="K=V",
                   help="environment (a default PATH is added unless given)")
    p.add_argument("--workdir", help="working directory")
    p.add_argument("--user", help="user[:group] to run as")
    p.add_argument("--label", action="append", default=[], metavar="K=V", help="image label")
    p.add_argument("--arch", default="amd64", help="image architecture (default amd64)")
    args = p.parse_args(argv)

    name, _, tag = args.tag.rpartition(":")
    if not name or "/" in tag or tag == "latest":
        raise SystemExit(f"mkimage: --tag must be name:tag and not :latest, got {args.tag!r}")

    tree = build_tree(args)
    out_dir = os.path.dirname(os.path.abspath(args.out))
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".mkimage-") as tmp:
        layer = os.path.join(tmp, "layer.tar")
        with open(layer, "wb") as f:
            write_layer(tree, f)
        diff_id, _ = sha256_file(layer)
        config = canonical(image_config(args, diff_id))
        partial = os.path.join(tmp, "image.tar")
        if args.format == "docker":
            image_id = write_docker_archive(partial, args.tag, layer, config)
        else:
            image_id = write_oci_archive(partial, args.tag, layer, config)
        os.replace(partial, args.out)
    print(f"mkimage: wrote {args.out} ({args.format}) {args.tag} sha256:{image_id[:12]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Build the ``pixelpilot/desktop`` docker image offline (no registry pulls), idempotently.

Two layers, each keyed by a hash of its inputs:

1. **base** ``pixelpilot/desktop-base:<hash>``: a Debian ``debootstrap --variant=minbase`` rootfs
   with Xvfb, openbox, xterm, xdotool, python3, python3-xlib, python3-numpy and fonts, turned
   into an image with ``docker import``. Only Debian's package mirror is contacted. Built once
   per package list (minutes); the hash covers suite, variant and package list.
2. **desktop** ``pixelpilot/desktop:latest``: the base plus ``/opt/pixelpilot`` (the ``envs``
   package, the pure-Python ``mss`` package copied from this interpreter — Debian bookworm has
   no python3-mss — and the entry script), committed with an entrypoint that starts Xvfb,
   openbox and the guest controller on ``/run/pixelpilot/guest.sock``. Rebuilt (seconds) when
   any input file changes; the input hash is stored in the image label ``pixelpilot.inputs``.

The guest needs no network at run time: containers run with ``network_mode="none"``.
Run ``python -m envs.docker.image`` (or ``scripts/build_docker_image.sh``); ``--force`` rebuilds.
This module imports the docker SDK lazily, so importing it needs nothing installed.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envs.errors import EnvSetupError

IMAGE = "pixelpilot/desktop:latest"
BASE_REPO = "pixelpilot/desktop-base"
INPUTS_LABEL = "pixelpilot.inputs"
GUEST_ROOT = "/opt/pixelpilot"
SOCKET_DIR = "/run/pixelpilot"  # bind-mounted from the host
TOKEN_PATH = "/run/pixelpilot-token"  # put into each container before it starts (mode 0400)
ENTRYPOINT = f"{GUEST_ROOT}/entry.sh"
BASE_PACKAGES: tuple[str, ...] = (
    "xvfb", "xauth", "openbox", "xterm", "xdotool", "python3", "python3-xlib", "python3-numpy",
    "fonts-dejavu-core", "libxrandr2", "libxfixes3", "x11-utils",
)
_ENVS_DIR = Path(__file__).resolve().parents[1]
_ENTRY_SCRIPT = Path(__file__).with_name("entry.sh")


@dataclass(frozen=True)
class ImageConfig:
    """What goes into the image.

    Attributes:
        tag: the final image tag.
        suite: Debian suite for debootstrap.
        mirror: Debian mirror URL (a package registry; nothing else is contacted).
        packages: Debian packages of the base rootfs.
    """

    tag: str = IMAGE
    suite: str = "bookworm"
    mirror: str = "http://deb.debian.org/debian"
    packages: tuple[str, ...] = field(default=BASE_PACKAGES)

    def __post_init__(self) -> None:
        if ":" not in self.tag:
            raise ValueError(f"tag must be repo:version, got {self.tag!r}")
        if not self.packages or not all(isinstance(p, str) and p and "," not in p for p in self.packages):
            raise ValueError(f"packages must be non-empty Debian package names, got {self.packages!r}")
        object.__setattr__(self, "packages", tuple(sorted(set(self.packages))))

    @property
    def base_tag(self) -> str:
        """``pixelpilot/desktop-base:<12 hex>`` — changes when suite or package list does."""
        spec = json.dumps({"suite": self.suite, "variant": "minbase", "packages": self.packages, "v": 2})
        return f"{BASE_REPO}:{hashlib.sha256(spec.encode()).hexdigest()[:12]}"


def _payload_files() -> list[tuple[str, Path]]:
    """(path inside /opt/pixelpilot, host path) of every file copied into the image, sorted."""
    import mss

    files: list[tuple[str, Path]] = [("entry.sh", _ENTRY_SCRIPT)]
    for pkg_name, pkg_dir in (("envs", _ENVS_DIR), ("mss", Path(mss.__file__).resolve().parent)):
        for path in sorted(pkg_dir.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".sh", ".json", ".md", ".typed"):
                files.append((f"{pkg_name}/{path.relative_to(pkg_dir)}", path))
    return sorted(files)


def inputs_hash(config: ImageConfig) -> str:
    """Hash of everything the final image is made of (base tag + payload file contents)."""
    h = hashlib.sha256(config.base_tag.encode())
    for rel, path in _payload_files():
        h.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _client() -> Any:
    try:
        import docker
    except ImportError:
        raise EnvSetupError("the docker SDK is missing: pip install 'pixelpilot[docker]'") from None
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure here means "no usable daemon"
        raise EnvSetupError(f"cannot reach the docker daemon ({exc}); run scripts/start_daemons.sh") from None
    return client


def _image_label(client: Any, tag: str, label: str) -> str | None:
    import docker

    try:
        return (client.images.get(tag).labels or {}).get(label)
    except docker.errors.ImageNotFound:
        return None


def _has_image(client: Any, tag: str) -> bool:
    import docker

    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def build_base(config: ImageConfig, client: Any, log: Any = print) -> str:
    """debootstrap the rootfs and ``docker import`` it; returns the base tag (skips if present)."""
    tag = config.base_tag
    if _has_image(client, tag):
        return tag
    if shutil.which("debootstrap") is None:
        raise EnvSetupError("debootstrap is missing: apt-get install debootstrap (scripts/setup.sh does)")
    if os.geteuid() != 0:
        raise EnvSetupError("debootstrap needs root: run scripts/build_docker_image.sh as root")
    with tempfile.TemporaryDirectory(prefix="pixelpilot-rootfs-", dir="/var/tmp") as tmp:
        root = Path(tmp) / "rootfs"
        cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(config.packages)}", config.suite, str(root),
               config.mirror]
        log(f"[image] debootstrap {config.suite} with {len(config.packages)} packages (a few minutes)")
        t0 = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise EnvSetupError(f"debootstrap failed ({proc.returncode}): {proc.stderr[-1500:] or proc.stdout[-1500:]}")
        log(f"[image] rootfs ready in {time.monotonic() - t0:.0f}s; docker import as {tag}")
        # Not needed at run time: package caches, documentation, translations (~80 MiB).
        for sub in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
                    "usr/share/info", "usr/share/locale"):
            shutil.rmtree(root / sub, ignore_errors=True)
            (root / sub).mkdir(parents=True, exist_ok=True)
        tar = subprocess.Popen(["tar", "-C", str(root), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
        imp = subprocess.run(["docker", "import", "-", tag], stdin=tar.stdout, capture_output=True, text=True, check=False)
        tar.wait()
        if imp.returncode != 0 or tar.returncode != 0:
            raise EnvSetupError(f"docker import failed: {imp.stderr.strip()[-800:]}")
    _remove_old_bases(client, keep=tag)
    return tag


def _remove_old_bases(client: Any, keep: str) -> None:
    """Drop base images of earlier package lists (each is ~500 MiB)."""
    import docker

    for image in client.images.list(name=BASE_REPO):
        for old in image.tags:
            if old != keep:
                try:
                    client.images.remove(old)
                except docker.errors.APIError:
                    pass  # still used by an image or container: keep it


def _payload_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for rel, path in _payload_files():
            info = tar.gettarinfo(str(path), arcname=f"{GUEST_ROOT.lstrip('/')}/{rel}")
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mode = 0o755 if rel.endswith(".sh") else 0o644
            with open(path, "rb") as fh:
                tar.addfile(info, fh)
    return buf.getvalue()


def _remove_if_untagged(client: Any, image_id: str) -> None:
    """Drop the image a rebuild replaced, unless something still names or uses it."""
    import docker

    try:
        if not client.images.get(image_id).tags:
            client.images.remove(image_id)
    except (docker.errors.ImageNotFound, docker.errors.APIError):
        pass  # gone already, or a container still uses it: leave it


def build_image(config: ImageConfig | None = None, *, force: bool = False, log: Any = print) -> dict[str, Any]:
    """Make sure ``config.tag`` exists and matches the current inputs; returns what was done."""
    config = config or ImageConfig()
    client = _client()
    t0 = time.monotonic()
    want = inputs_hash(config)
    if not force and _image_label(client, config.tag, INPUTS_LABEL) == want:
        return {"tag": config.tag, "built": False, "inputs": want, "seconds": time.monotonic() - t0}
    base_had = _has_image(client, config.base_tag)
    old_id = client.images.get(config.tag).id if _has_image(client, config.tag) else None
    base = build_base(config, client, log)
    container = client.containers.create(base, command=["/bin/true"], network_mode="none",
                                         labels={"pixelpilot.build": "1"})
    try:
        container.put_archive("/", _payload_tar())
        changes = [f'ENTRYPOINT ["{ENTRYPOINT}"]', f"LABEL {INPUTS_LABEL}={want}", "ENV LANG=C.UTF-8",
                   f"ENV PYTHONPATH={GUEST_ROOT}", "WORKDIR /root"]
        repo, tag = config.tag.rsplit(":", 1)
        container.commit(repository=repo, tag=tag, changes=changes)
    finally:
        container.remove(force=True)
    image = client.images.get(config.tag)
    if old_id is not None and old_id != image.id:
        _remove_if_untagged(client, old_id)
    size = image.attrs.get("Size", 0)
    log(f"[image] {config.tag} ready ({size / 2**20:.0f} MiB)")
    return {"tag": config.tag, "built": True, "base_built": not base_had, "inputs": want,
            "seconds": time.monotonic() - t0, "size_bytes": size}


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m envs.docker.image [--force] [--tag T]``; prints a JSON summary."""
    parser = argparse.ArgumentParser(description="Build the pixelpilot desktop docker image offline.")
    parser.add_argument("--force", action="store_true", help="rebuild the final layer even if inputs match")
    parser.add_argument("--tag", default=IMAGE, help=f"image tag (default {IMAGE})")
    parser.add_argument("--mirror", default=ImageConfig.mirror, help="Debian mirror for debootstrap")
    args = parser.parse_args(argv)
    try:
        result = build_image(ImageConfig(tag=args.tag, mirror=args.mirror), force=args.force,
                             log=lambda m: print(m, file=sys.stderr))
    except EnvSetupError as exc:
        print(f"build_docker_image: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Build the pixelpilot VM base image offline (Debian packages only), idempotently.

What ``VMEnv`` boots (all under ``VMImageConfig.root``, default ``/var/lib/pixelpilot/vm``):

- ``vmlinuz-<kver>``: the host's Debian kernel (package ``linux-image-amd64``), copied.
- ``initrd-<hash>.img``: a tiny busybox initramfs (``busybox-static``) that loads the virtio
  and ext4 modules of that kernel, mounts ``/dev/vda`` and switches to it. No udev, no
  initramfs-tools: it boots in well under a second even under TCG.
- ``base-<hash>.qcow2``: an ext4 root filesystem (``mkfs.ext4 -d``, no loop mount) made from a
  ``debootstrap --variant=minbase`` rootfs with Xvfb, openbox, xterm, python3, python3-xlib,
  python3-numpy, plus ``/opt/pixelpilot`` (the ``envs`` package and pure-Python ``mss``).
  PID 1 of the guest is ``envs/vm/guest_init.sh``: it starts the guest controller on the
  virtio-serial port ``org.pixelpilot.guest`` (which starts Xvfb + openbox), and a root shell
  on tty1 for the QEMU ``sendKey`` fallback. No systemd: fewer seconds of TCG boot.
- ``manifest.json``: which of the above is current, with its input hash.

The debootstrap rootfs is cached per package list (``rootfs-<hash>/``, minutes to build); the
disk and initrd are rebuilt (tens of seconds) when the kernel, the payload (``envs``) or the
init scripts change. Base disks are never modified after build (each env runs on its own qcow2
overlay); a rebuild deletes the old ones unless an overlay under ``run/`` still uses them (``prune_bases``).

Run ``python -m envs.vm.image`` or ``scripts/build_vm_image.sh`` (as root); ``--force`` rebuilds.
This module knows nothing about libvirt.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from envs.errors import EnvSetupError

DEFAULT_ROOT = os.environ.get("PIXELPILOT_VM_DIR", "/var/lib/pixelpilot/vm")
GUEST_ROOT = "/opt/pixelpilot"
GUEST_INIT = f"{GUEST_ROOT}/envs/vm/guest_init.sh"
BASE_PACKAGES: tuple[str, ...] = (
    "xvfb", "xauth", "openbox", "xterm", "xdotool", "python3", "python3-xlib", "python3-numpy",
    "fonts-dejavu-core", "libxrandr2", "libxfixes3", "x11-utils",
)
#: Kernel modules the guest needs (dependencies are resolved with ``modprobe --show-depends``).
MODULES: tuple[str, ...] = ("virtio_pci", "virtio_blk", "virtio_console", "ext4")
_HERE = Path(__file__).resolve().parent
_ENVS_DIR = _HERE.parent
_INITRAMFS_INIT = _HERE / "initramfs_init.sh"


def _default_kernel() -> str:
    """The newest kernel version with both ``/boot/vmlinuz-V`` and ``/lib/modules/V``."""
    versions = sorted(v for v in os.listdir("/lib/modules") if os.path.exists(f"/boot/vmlinuz-{v}")) \
        if os.path.isdir("/lib/modules") else []
    return versions[-1] if versions else ""


@dataclass(frozen=True)
class VMImageConfig:
    """What goes into the VM image and where it lives.

    Attributes:
        root: directory holding the images (must be readable by libvirt's QEMU user).
        suite / mirror: Debian suite and mirror for debootstrap (a package registry; nothing else is contacted).
        packages: Debian packages of the rootfs.
        kernel: kernel version from ``/boot`` and ``/lib/modules`` (default: the newest installed).
        disk_mib: virtual size of the root disk (sparse; the guest's free space is this minus the rootfs).
    """

    root: str = DEFAULT_ROOT
    suite: str = "bookworm"
    mirror: str = "http://deb.debian.org/debian"
    packages: tuple[str, ...] = field(default=BASE_PACKAGES)
    kernel: str = field(default_factory=_default_kernel)
    disk_mib: int = 2048

    def __post_init__(self) -> None:
        if not self.packages or not all(isinstance(p, str) and p and "," not in p for p in self.packages):
            raise ValueError(f"packages must be non-empty Debian package names, got {self.packages!r}")
        object.__setattr__(self, "packages", tuple(sorted(set(self.packages))))
        if not self.kernel:
            raise ValueError("no kernel found: apt-get install linux-image-amd64 (it provides /boot/vmlinuz-* and "
                             "/lib/modules/*), or pass kernel=")
        if not 512 <= self.disk_mib <= 65536:
            raise ValueError(f"disk_mib must be in [512, 65536], got {self.disk_mib}")

    @property
    def rootfs_hash(self) -> str:
        spec = json.dumps({"suite": self.suite, "variant": "minbase", "packages": self.packages, "v": 1})
        return hashlib.sha256(spec.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class VMImage:
    """A built image (what ``manifest.json`` records); paths are absolute."""

    kernel: str
    initrd: str
    disk: str
    inputs: str
    kernel_version: str
    disk_bytes: int
    build_s: float

    @classmethod
    def load(cls, root: str = DEFAULT_ROOT) -> VMImage:
        """The current image under ``root``; ``EnvSetupError`` says how to build it."""
        path = Path(root) / "manifest.json"
        try:
            image = cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise EnvSetupError(f"no VM image in {root} ({exc}): run scripts/build_vm_image.sh (as root)") from None
        for p in (image.kernel, image.initrd, image.disk):
            if not os.path.isfile(p):
                raise EnvSetupError(f"VM image file {p} is missing: run scripts/build_vm_image.sh --force")
        return image


def _payload_files() -> list[tuple[str, Path]]:
    """(path under /opt/pixelpilot, host path) of every file copied into the guest, sorted."""
    import mss

    files: list[tuple[str, Path]] = []
    for name, pkg in (("envs", _ENVS_DIR), ("mss", Path(mss.__file__).resolve().parent)):
        for path in sorted(pkg.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".sh", ".json", ".typed"):
                files.append((f"{name}/{path.relative_to(pkg)}", path))
    return sorted(files)


def _module_paths(kernel: str) -> list[str]:
    """Absolute .ko paths of ``MODULES`` and their dependencies, in load order, without repeats."""
    proc = subprocess.run(["modprobe", "--show-depends", "-S", kernel, "-a", *MODULES], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise EnvSetupError(f"modprobe --show-depends failed for kernel {kernel}: {proc.stderr.strip()}")
    out: list[str] = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        # arch/x86/crypto holds CPU-specific accelerations that TCG's CPU may lack; the generic ones suffice.
        if len(parts) >= 2 and parts[0] == "insmod" and parts[1] not in out and "/arch/x86/crypto/" not in parts[1]:
            out.append(parts[1])
    return out


def inputs_hash(config: VMImageConfig) -> str:
    """Hash of everything the disk and initrd are made of."""
    h = hashlib.sha256(json.dumps({"rootfs": config.rootfs_hash, "kernel": config.kernel,
                                   "disk_mib": config.disk_mib, "modules": _module_paths(config.kernel)}).encode())
    for rel, path in _payload_files() + [("initramfs_init", _INITRAMFS_INIT)]:
        h.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _run(cmd: list[str], what: str, **kw: Any) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)
    if proc.returncode != 0:
        raise EnvSetupError(f"{what} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-1500:]}")


def build_rootfs(config: VMImageConfig, log: Any = print) -> Path:
    """debootstrap the rootfs into ``root/rootfs-<hash>`` (skipped when it exists)."""
    dest = Path(config.root) / f"rootfs-{config.rootfs_hash}"
    if (dest / ".complete").exists():
        return dest
    if shutil.which("debootstrap") is None:
        raise EnvSetupError("debootstrap is missing: apt-get install debootstrap (scripts/setup.sh does)")
    tmp = Path(config.root) / f".rootfs-{config.rootfs_hash}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    log(f"[vm-image] debootstrap {config.suite} with {len(config.packages)} packages (a few minutes)")
    t0 = time.monotonic()
    _run(["debootstrap", "--variant=minbase", f"--include={','.join(config.packages)}", config.suite, str(tmp),
          config.mirror], "debootstrap")
    for sub in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale"):
        shutil.rmtree(tmp / sub, ignore_errors=True)  # not needed at run time: a smaller disk
        (tmp / sub).mkdir(parents=True, exist_ok=True)
    (tmp / ".complete").write_text(f"{time.monotonic() - t0:.0f}s\n")
    tmp.rename(dest)
    log(f"[vm-image] rootfs ready in {time.monotonic() - t0:.0f}s")
    return dest


def _is_static_elf(path: str) -> bool:
    """True for a 64-bit ELF without a PT_INTERP program header (needs no dynamic loader)."""
    with open(path, "rb") as fh:
        head = fh.read(64)
        if head[:5] != b"\x7fELF\x02":
            return False
        phoff, = struct.unpack_from("<Q", head, 32)
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        fh.seek(phoff)
        table = fh.read(phentsize * phnum)
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != 3 for i in range(phnum))  # 3 = PT_INTERP


def build_initrd(config: VMImageConfig, out: Path) -> None:
    """A gzip'd newc cpio: static busybox, the kernel modules, and ``initramfs_init.sh`` as /init."""
    busybox = "/bin/busybox"  # from busybox-static: the initramfs has no libc
    if not os.path.isfile(busybox) or not _is_static_elf(busybox):
        raise EnvSetupError("a static busybox is missing: apt-get install busybox-static (scripts/setup.sh does)")
    with tempfile.TemporaryDirectory(prefix="ppvm-initrd-") as tmp:
        root = Path(tmp)
        for d in ("bin", "dev", "proc", "sys", "newroot", "modules"):
            (root / d).mkdir()
        shutil.copy2(busybox, root / "bin" / "busybox")
        order = []
        for i, ko in enumerate(_module_paths(config.kernel)):
            name = f"{i:02d}-{Path(ko).name}"
            shutil.copy2(ko, root / "modules" / name)
            order.append(name)
        (root / "modules" / "order").write_text("\n".join(order) + "\n")
        shutil.copy2(_INITRAMFS_INIT, root / "init")
        os.chmod(root / "init", 0o755)
        files = subprocess.run(["find", "."], cwd=root, capture_output=True, text=True, check=True).stdout
        cpio = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet", "-R", "0:0"], cwd=root, input=files.encode(),
                              capture_output=True, check=False)
        if cpio.returncode != 0:
            raise EnvSetupError(f"cpio failed: {cpio.stderr.decode()[-500:]}")
        out.write_bytes(subprocess.run(["gzip", "-1"], input=cpio.stdout, capture_output=True, check=True).stdout)


def build_disk(config: VMImageConfig, rootfs: Path, out: Path) -> None:
    """Put the payload into the rootfs, then ``mkfs.ext4 -d`` it into a raw file and convert to qcow2."""
    opt = rootfs / GUEST_ROOT.lstrip("/")
    shutil.rmtree(opt, ignore_errors=True)  # the payload is replaced as a whole
    for rel, path in _payload_files():
        dest = opt / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        os.chmod(dest, 0o755 if rel.endswith(".sh") else 0o644)
    (rootfs / "etc" / "hostname").write_text("pixelpilot-vm\n")
    # Byte-compile with the guest's own python3: under TCG, compiling envs at every boot costs seconds.
    _run(["chroot", str(rootfs), "python3", "-m", "compileall", "-q", GUEST_ROOT], "compileall in the rootfs")
    with tempfile.TemporaryDirectory(prefix="ppvm-disk-", dir=config.root) as tmp:
        raw = Path(tmp) / "root.raw"
        _run(["mkfs.ext4", "-q", "-F", "-L", "pixelpilot", "-E", "root_owner=0:0", "-d", str(rootfs), str(raw),
              f"{config.disk_mib}M"], "mkfs.ext4 -d")
        _run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(out)], "qemu-img convert")
    os.chmod(out, 0o444)  # the base is read-only; every env writes to its own overlay


def _backing_files(run_dir: Path) -> set[str]:
    """Base images that the overlays under ``run_dir`` (running or left by crashes) are built on."""
    used = set()
    for overlay in run_dir.glob("*/disk.qcow2"):
        proc = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(overlay)], capture_output=True, text=True,
                              check=False)
        if proc.returncode == 0:
            used.add(str(json.loads(proc.stdout).get("backing-filename", "")))
    return used


def prune_bases(root: str, keep: str) -> list[str]:
    """Delete ``base-*.qcow2`` / ``initrd-*.img`` other than ``keep``'s unless an overlay in ``root/run`` uses them."""
    used = _backing_files(Path(root) / "run")
    removed = []
    for path in sorted(Path(root).glob("*")):
        stem = path.name.split("-", 1)[-1].split(".", 1)[0]
        if not path.name.startswith(("base-", "initrd-")) or stem == keep:
            continue
        if str(Path(root) / f"base-{stem}.qcow2") in used:
            continue  # a live (or crashed, to be cleaned) env still boots from it
        path.unlink(missing_ok=True)
        removed.append(str(path))
    return removed


def build_image(config: VMImageConfig | None = None, *, force: bool = False, log: Any = print) -> dict[str, Any]:
    """Make sure the image under ``config.root`` matches the current inputs; returns what was done."""
    config = config or VMImageConfig()
    if os.geteuid() != 0:
        raise EnvSetupError("building the VM image needs root (debootstrap, file ownership): run it as root")
    for tool in ("mkfs.ext4", "qemu-img", "cpio", "modprobe"):
        if shutil.which(tool) is None:
            raise EnvSetupError(f"{tool} is missing: run scripts/setup.sh (it installs qemu-utils, e2fsprogs, cpio)")
    root = Path(config.root)
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    t0 = time.monotonic()
    with open(root / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time; the others then find it built
        want = inputs_hash(config)
        try:
            current = VMImage.load(config.root)
        except EnvSetupError:
            current = None
        if current is not None and current.inputs == want and not force:
            return {"built": False, "inputs": want, "seconds": time.monotonic() - t0, **asdict(current)}
        rootfs = build_rootfs(config, log)
        kernel = root / f"vmlinuz-{config.kernel}"
        shutil.copyfile(f"/boot/vmlinuz-{config.kernel}", kernel)
        os.chmod(kernel, 0o644)
        initrd, disk = root / f"initrd-{want}.img", root / f"base-{want}.qcow2"
        build_initrd(config, initrd)
        os.chmod(initrd, 0o644)
        disk.unlink(missing_ok=True)
        build_disk(config, rootfs, disk)
        image = VMImage(str(kernel), str(initrd), str(disk), want, config.kernel, disk.stat().st_size,
                        round(time.monotonic() - t0, 1))
        tmp = root / "manifest.json.tmp"
        tmp.write_text(json.dumps(asdict(image), indent=1))
        tmp.rename(root / "manifest.json")
        pruned = prune_bases(config.root, want)
    log(f"[vm-image] {disk} ready ({image.disk_bytes / 2**20:.0f} MiB) in {image.build_s:.0f}s")
    return {"built": True, "seconds": image.build_s, "pruned": pruned, **asdict(image)}


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m envs.vm.image [--force] [--root DIR]``; prints a JSON summary."""
    parser = argparse.ArgumentParser(description="Build the pixelpilot VM base image offline.")
    parser.add_argument("--force", action="store_true", help="rebuild disk and initrd even if inputs match")
    parser.add_argument("--root", default=DEFAULT_ROOT, help=f"image directory (default {DEFAULT_ROOT})")
    parser.add_argument("--mirror", default=VMImageConfig.mirror, help="Debian mirror for debootstrap")
    args = parser.parse_args(argv)
    try:
        result = build_image(VMImageConfig(root=args.root, mirror=args.mirror), force=args.force,
                             log=lambda m: print(m, file=sys.stderr))
    except (EnvSetupError, ValueError) as exc:
        print(f"build_vm_image: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

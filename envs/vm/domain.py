"""libvirt side of the VM env: the domain XML, the domain's lifecycle, snapshots, screenshots.

A pixelpilot domain is persistent (internal snapshots need a defined domain), boots the
image's kernel and initrd directly (no bootloader), has one virtio disk — a qcow2 overlay of
the shared read-only base — one virtio-serial channel to the guest controller (QEMU listens
on a unix socket whose path libvirt chooses; ``channel_path``), a serial console logged to a
file, a VGA device (what ``screenshot`` and ``send_keys`` see) and **no network interface and
no graphics listener**. Domain names start with ``pixelpilot-vm-``; the owner PID and overlay
path are stored in the domain's metadata, so ``remove_stale`` can clean up after crashed runs
without touching a domain that a live process owns.

This module knows nothing about actions or the guest controller protocol.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from envs.desktop.procs import pid_running
from envs.errors import BackendDiedError, EnvSetupError

NAME_PREFIX = "pixelpilot-vm-"
CHANNEL_NAME = "org.pixelpilot.guest"
META_NS = "https://github.com/pixelpilot/vm"
DOMAIN_TYPES = ("qemu", "kvm", "test")
_PID_DIR = "/run/libvirt/qemu"


def libvirt_module() -> Any:
    """The ``libvirt`` Python module, or ``EnvSetupError`` saying how to install it."""
    try:
        import libvirt
    except ImportError:
        raise EnvSetupError("libvirt-python is missing: pip install 'pixelpilot[vm]' (needs libvirt-dev, "
                            "pkg-config)") from None
    return libvirt


def connect(uri: str = "qemu:///system") -> Any:
    """An open libvirt connection; ``EnvSetupError`` when the daemon cannot be reached."""
    libvirt = libvirt_module()
    libvirt.registerErrorHandler(lambda *_: None, None)  # errors arrive as exceptions; no stderr spam
    try:
        return libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise EnvSetupError(f"cannot connect to libvirt at {uri} ({exc}); run scripts/start_daemons.sh") from None


@dataclass(frozen=True)
class DomainSpec:
    """Everything the domain XML is made of.

    Attributes:
        name: domain name; must start with ``NAME_PREFIX``.
        kernel / initrd / disk: host paths (``disk`` is the env's own qcow2 overlay).
        console_log: host file receiving the guest's serial console.
        owner_pid: PID of the host process that owns the domain (for stale cleanup).
        memory_mib / vcpus: guest size (TCG: keep it small).
        domain_type: ``qemu`` (TCG, works everywhere), ``kvm`` (needs a usable /dev/kvm), ``test`` (unit tests).
        cmdline: extra kernel command-line words (``key=value``; no spaces or quotes).
        emulator: the QEMU binary.
    """

    name: str
    kernel: str
    initrd: str
    disk: str
    console_log: str
    owner_pid: int = field(default_factory=os.getpid)
    memory_mib: int = 768
    vcpus: int = 1
    domain_type: str = "qemu"
    cmdline: tuple[str, ...] = ()
    emulator: str = "/usr/bin/qemu-system-x86_64"

    def __post_init__(self) -> None:
        if not re.fullmatch(re.escape(NAME_PREFIX) + r"[A-Za-z0-9_.-]{1,40}", self.name):
            raise ValueError(f"domain name must be {NAME_PREFIX}<1-40 of [A-Za-z0-9_.-]>, got {self.name!r}")
        if self.domain_type not in DOMAIN_TYPES:
            raise ValueError(f"domain_type must be one of {DOMAIN_TYPES}, got {self.domain_type!r}")
        if not 128 <= self.memory_mib <= 65536 or not 1 <= self.vcpus <= 64:
            raise ValueError(f"memory_mib must be in [128, 65536] and vcpus in [1, 64], got {self.memory_mib}, "
                             f"{self.vcpus}")
        object.__setattr__(self, "cmdline", tuple(self.cmdline))
        for word in self.cmdline:
            if not re.fullmatch(r"[A-Za-z0-9_.=,:/-]+", word):
                raise ValueError(f"kernel command-line words may use [A-Za-z0-9_.=,:/-] only, got {word!r}")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def domain_xml(spec: DomainSpec) -> str:
    """The libvirt domain XML of ``spec`` (no NIC, no graphics listener, no USB, no balloon)."""
    dom = ET.Element("domain", type=spec.domain_type)
    _sub(dom, "name", spec.name)
    meta = _sub(dom, "metadata")
    ET.SubElement(meta, f"{{{META_NS}}}owner", {"pid": str(spec.owner_pid), "disk": spec.disk,
                                               "console": spec.console_log})
    _sub(dom, "memory", str(spec.memory_mib), unit="MiB")
    _sub(dom, "vcpu", str(spec.vcpus))
    os_el = _sub(dom, "os")
    _sub(os_el, "type", "hvm", arch="x86_64", machine="pc")
    _sub(os_el, "kernel", spec.kernel)
    _sub(os_el, "initrd", spec.initrd)
    base = ("console=ttyS0", "console=tty1", "panic=-1", "quiet", "loglevel=3")
    _sub(os_el, "cmdline", " ".join(base + spec.cmdline))
    _sub(_sub(dom, "features"), "acpi")
    _sub(dom, "clock", offset="utc")
    for event in ("on_poweroff", "on_reboot", "on_crash"):
        _sub(dom, event, "destroy")  # a guest that panics or reboots is dead: reset() recreates it
    dev = _sub(dom, "devices")
    if spec.domain_type != "test":
        _sub(dev, "emulator", spec.emulator)
    disk = _sub(dev, "disk", type="file", device="disk")
    _sub(disk, "driver", name="qemu", type="qcow2", cache="unsafe")  # throwaway overlay: no host fsyncs
    _sub(disk, "source", file=spec.disk)
    _sub(disk, "target", dev="vda", bus="virtio")
    chan = _sub(dev, "channel", type="unix")
    _sub(chan, "source", mode="bind")  # libvirt picks the socket path: see channel_path()
    _sub(chan, "target", type="virtio", name=CHANNEL_NAME)
    serial = _sub(dev, "serial", type="file")
    _sub(serial, "source", path=spec.console_log)
    _sub(serial, "target", port="0")
    _sub(dev, "input", type="keyboard", bus="ps2")
    _sub(_sub(dev, "video"), "model", type="vga", vram="16384", heads="1")
    _sub(dev, "controller", type="usb", model="none")
    _sub(dev, "memballoon", model="none")
    return ET.tostring(dom, encoding="unicode")


def owner_of(dom: Any) -> dict[str, str]:
    """The metadata ``domain_xml`` stored (``pid``, ``disk``, ``console``); empty if absent."""
    root = ET.fromstring(dom.XMLDesc(0))
    el = root.find(f"metadata/{{{META_NS}}}owner")
    return dict(el.attrib) if el is not None else {}


def channel_path(dom: Any) -> str:
    """Host path of the controller channel's unix socket (from the running domain's XML)."""
    root = ET.fromstring(dom.XMLDesc(0))
    for chan in root.findall("devices/channel"):
        target, source = chan.find("target"), chan.find("source")
        if target is not None and target.get("name") == CHANNEL_NAME and source is not None and source.get("path"):
            return str(source.get("path"))
    raise EnvSetupError(f"domain {dom.name()} has no {CHANNEL_NAME} channel socket; is it running?")


def qemu_pid(dom: Any) -> int | None:
    """PID of the domain's QEMU process (from libvirt's pid file), or None if not running."""
    try:
        with open(os.path.join(_PID_DIR, f"{dom.name()}.pid"), encoding="ascii") as fh:
            pid = int(fh.read().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_running(pid) else None


def define_and_start(conn: Any, spec: DomainSpec) -> Any:
    """Define the persistent domain and start it; on failure nothing stays defined."""
    libvirt = libvirt_module()
    dom = conn.defineXML(domain_xml(spec))
    try:
        dom.create()
    except libvirt.libvirtError as exc:
        undefine(dom)
        raise EnvSetupError(f"libvirt could not start domain {spec.name}: {exc}") from None
    return dom


def is_running(dom: Any) -> bool:
    """True while the domain is active; False when it stopped or libvirt forgot it."""
    libvirt = libvirt_module()
    try:
        return bool(dom.isActive())
    except libvirt.libvirtError:
        return False


def create_snapshot(dom: Any, name: str) -> Any:
    """An internal snapshot of the running domain, RAM included (qcow2 disks only)."""
    libvirt = libvirt_module()
    xml = f"<domainsnapshot><name>{name}</name><description>pixelpilot clean state</description></domainsnapshot>"
    try:
        return dom.snapshotCreateXML(xml, 0)
    except libvirt.libvirtError as exc:
        raise EnvSetupError(f"snapshot {name} of {dom.name()} failed: {exc}") from None


def load_snapshot(dom: Any, name: str) -> None:
    """Load internal snapshot ``name`` into the *running* QEMU (HMP ``loadvm`` through libvirt).

    Why not ``revertToSnapshot``: libvirt 9 reverts a running domain by restarting QEMU with
    ``-loadvm`` (~4 s here), which also drops the controller channel's connection. ``loadvm``
    in the same process takes ~0.5 s and the connection stays up (the guest's view of the
    port is restored as connected). The snapshot is one libvirt created, and the disk is the
    same file, so libvirt's view of the domain stays right; libvirt marks the domain
    "tainted: custom-monitor" in its log.
    """
    libvirt = libvirt_module()
    import libvirt_qemu

    try:
        out = libvirt_qemu.qemuMonitorCommand(dom, f"loadvm {name}", libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP)
    except libvirt.libvirtError as exc:
        raise BackendDiedError(f"loadvm {name} in {dom.name()} failed ({exc}); the env recreates the VM on the next "
                               "reset") from None
    if out.strip():  # HMP answers with nothing on success and with an error text otherwise
        raise BackendDiedError(f"loadvm {name} in {dom.name()} failed: {out.strip()}; the env recreates the VM on the "
                               "next reset")


def revert(dom: Any, name: str) -> None:
    """libvirt's revert to snapshot ``name`` (QEMU restarts from the saved RAM); ``BackendDiedError`` on failure."""
    libvirt = libvirt_module()
    try:
        dom.revertToSnapshot(dom.snapshotLookupByName(name, 0), libvirt.VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING)
    except libvirt.libvirtError as exc:
        raise BackendDiedError(f"reverting {dom.name()} to snapshot {name} failed ({exc}); the env recreates the "
                               "VM on the next reset") from None


def screenshot(conn: Any, dom: Any) -> np.ndarray:
    """The VGA screen as an RGB uint8 array (H, W, 3), via virDomainScreenshot (QEMU screendump, PPM)."""
    libvirt = libvirt_module()
    stream = conn.newStream(0)
    chunks: list[bytes] = []
    try:
        dom.screenshot(stream, 0, 0)
        stream.recvAll(lambda _s, data, buf: buf.append(bytes(data)) or len(data), chunks)
        stream.finish()
    except libvirt.libvirtError as exc:
        raise BackendDiedError(f"screenshot of {dom.name()} failed ({exc}); call reset()") from None
    return decode_image(b"".join(chunks))


def decode_image(data: bytes) -> np.ndarray:
    """Decode what virDomainScreenshot sent (PPM from QEMU's screendump, PNG from other drivers) to (H, W, 3) uint8."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except UnidentifiedImageError:
        raise BackendDiedError(f"the domain's screenshot is not an image (starts {data[:16]!r}); "
                               "call reset()") from None


def undefine(dom: Any) -> None:
    """Stop (if running) and undefine the domain with its snapshot metadata; idempotent."""
    libvirt = libvirt_module()
    try:
        if dom.isActive():
            dom.destroy()
    except libvirt.libvirtError:
        pass  # already stopped or gone
    try:
        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
    except libvirt.libvirtError:
        pass  # already undefined


def create_overlay(base: str, overlay: str) -> None:
    """A qcow2 overlay of the read-only ``base`` at ``overlay`` (replaced if present)."""
    if os.path.exists(overlay):
        os.unlink(overlay)
    proc = subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", base, overlay],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise EnvSetupError(f"qemu-img create of the overlay failed: {proc.stderr.strip()} "
                            "(apt-get install qemu-utils)")


def remove_files(meta: dict[str, str]) -> None:
    """Delete a domain's overlay and console log (and their run directory when it is ours)."""
    for key in ("disk", "console"):
        path = meta.get(key, "")
        if path:
            parent = os.path.dirname(path)
            if os.path.basename(parent).startswith(NAME_PREFIX):
                shutil.rmtree(parent, ignore_errors=True)
            elif os.path.isfile(path):
                os.unlink(path)


def remove_stale(conn: Any) -> list[str]:
    """Remove pixelpilot domains (and their files) whose owner process is gone; returns their names."""
    libvirt = libvirt_module()
    removed = []
    for dom in conn.listAllDomains(0):
        name = dom.name()
        if not name.startswith(NAME_PREFIX):
            continue
        try:
            meta = owner_of(dom)
        except libvirt.libvirtError:
            continue  # removed by someone else meanwhile
        owner = meta.get("pid", "")
        if owner.isdigit() and pid_running(int(owner)):
            continue
        undefine(dom)
        remove_files(meta)
        removed.append(name)
    return removed

"""Unit tests of the VM env's libvirt code against libvirt's built-in ``test:///default`` driver.

The test driver runs in-process (no daemon, no QEMU): it defines, starts, snapshots, reverts,
screenshots and undefines domains for real, which is what ``envs.vm.domain`` does to QEMU ones.
Also covers the sendKey keycode map and config validation. The real-VM tests are in
``test_vm_env.py``.
"""

from __future__ import annotations

import io
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from envs.errors import InvalidActionError, UnknownKeyError

libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed (pip install 'pixelpilot[vm]')")

from envs.vm import domain as vmd
from envs.vm.keys import KEY_LEFTSHIFT, LINUX_KEYCODES, chord, keycodes, text_chords


@pytest.fixture()
def conn():
    c = vmd.connect("test:///default")
    yield c
    for dom in c.listAllDomains(0):
        if dom.name().startswith(vmd.NAME_PREFIX):
            vmd.undefine(dom)
    c.close()


def _spec(tmp_path: Path, name: str = "pixelpilot-vm-unit", **kw) -> vmd.DomainSpec:
    run = tmp_path / name
    run.mkdir(exist_ok=True)
    (run / "disk.qcow2").write_bytes(b"overlay")
    (run / "console.log").write_bytes(b"")
    return vmd.DomainSpec(name=name, kernel="/boot/vmlinuz", initrd="/x/initrd.img", disk=str(run / "disk.qcow2"),
                          console_log=str(run / "console.log"), domain_type="test",
                          cmdline=("pixelpilot.token=abc123", "pixelpilot.screen=800x600"), **kw)


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_domain_xml_has_no_network_no_graphics_listener_and_the_controller_channel(tmp_path):
    spec = vmd.DomainSpec(**{**_spec(tmp_path).__dict__, "domain_type": "qemu"})
    root = ET.fromstring(vmd.domain_xml(spec))
    assert root.get("type") == "qemu" and root.findtext("name") == "pixelpilot-vm-unit"
    devices = root.find("devices")
    assert devices.findall("interface") == [] and devices.findall("graphics") == []
    chan = devices.find("channel")
    assert chan.get("type") == "unix" and chan.find("source").get("mode") == "bind"
    assert chan.find("target").attrib == {"type": "virtio", "name": vmd.CHANNEL_NAME}
    disk = devices.find("disk")
    assert disk.find("source").get("file") == spec.disk and disk.find("driver").get("type") == "qcow2"
    assert devices.find("emulator").text == "/usr/bin/qemu-system-x86_64"
    assert root.findtext("memory") == "768" and root.findtext("vcpu") == "1"
    cmdline = root.findtext("os/cmdline")
    assert "pixelpilot.token=abc123" in cmdline and "pixelpilot.screen=800x600" in cmdline
    assert all(root.findtext(e) == "destroy" for e in ("on_poweroff", "on_reboot", "on_crash"))


@pytest.mark.parametrize("bad", [
    {"name": "other-vm"}, {"name": "pixelpilot-vm-has space"}, {"domain_type": "xen"}, {"memory_mib": 64},
    {"vcpus": 0}, {"cmdline": ("init=/bin/sh; reboot",)}, {"cmdline": ("a b",)},
])
def test_domain_spec_rejects_bad_values(tmp_path, bad):
    fields = {**_spec(tmp_path).__dict__, **bad}
    with pytest.raises(ValueError):
        vmd.DomainSpec(**fields)


def test_lifecycle_snapshot_revert_screenshot_and_undefine(conn, tmp_path):
    spec = _spec(tmp_path)
    dom = vmd.define_and_start(conn, spec)
    assert vmd.is_running(dom)
    assert vmd.owner_of(dom) == {"pid": str(os.getpid()), "disk": spec.disk, "console": spec.console_log}
    snap = vmd.create_snapshot(dom, "clean")
    assert [s.getName() for s in dom.listAllSnapshots()] == ["clean"] and snap.getName() == "clean"
    dom.suspend()
    vmd.revert(dom, "clean")  # the snapshot was taken running: revert brings it back running
    assert dom.info()[0] == libvirt.VIR_DOMAIN_RUNNING
    pixels = vmd.screenshot(conn, dom)
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3 and pixels.std() > 0
    vmd.undefine(dom)
    vmd.undefine(dom)  # idempotent
    assert spec.name not in [d.name() for d in conn.listAllDomains(0)]


def test_revert_to_a_missing_snapshot_is_a_backend_error(conn, tmp_path):
    from envs.errors import BackendDiedError

    dom = vmd.define_and_start(conn, _spec(tmp_path))
    with pytest.raises(BackendDiedError, match="recreates the VM"):
        vmd.revert(dom, "nope")


def test_remove_stale_removes_dead_owners_domains_and_files_only(conn, tmp_path):
    dead = _spec(tmp_path, "pixelpilot-vm-dead", owner_pid=_dead_pid())
    live = _spec(tmp_path, "pixelpilot-vm-live")
    vmd.define_and_start(conn, dead)
    vmd.define_and_start(conn, live)
    foreign = conn.defineXML("<domain type='test'><name>not-ours</name><memory>65536</memory>"
                             "<os><type>hvm</type></os></domain>")
    try:
        assert vmd.remove_stale(conn) == ["pixelpilot-vm-dead"]
        names = {d.name() for d in conn.listAllDomains(0)}
        assert "pixelpilot-vm-dead" not in names and {"pixelpilot-vm-live", "not-ours"} <= names
        assert not Path(dead.disk).parent.exists() and Path(live.disk).exists()
    finally:
        foreign.undefine()


def test_channel_path_missing_says_what_is_wrong(conn, tmp_path):
    from envs.errors import EnvSetupError

    dom = vmd.define_and_start(conn, _spec(tmp_path))
    with pytest.raises(EnvSetupError, match="channel"):
        vmd.channel_path(dom)


def test_decode_image_reads_qemu_ppm_and_png():
    from PIL import Image

    rgb = np.random.default_rng(0).integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    ppm = b"P6\n7 5\n255\n" + rgb.tobytes()
    assert np.array_equal(vmd.decode_image(ppm), rgb)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    assert np.array_equal(vmd.decode_image(buf.getvalue()), rgb)


def test_sendkey_keycodes():
    assert keycodes("enter") == keycodes("Return") == [28]
    assert keycodes("a") == [30] and keycodes("A") == [KEY_LEFTSHIFT, 30]
    assert keycodes(">") == [KEY_LEFTSHIFT, LINUX_KEYCODES["."]]
    assert chord(("ctrl", "shift", "t")) == [29, 42, 20]
    assert chord(("shift", "A")) == [42, 30]  # no repeated keycodes in one chord
    assert text_chords("ls -l\n") == [[38], [31], [57], [12], [38], [28]]
    assert len({LINUX_KEYCODES[c] for c in "abcdefghijklmnopqrstuvwxyz0123456789"}) == 36
    with pytest.raises(InvalidActionError, match="US keyboard"):
        text_chords("é")
    with pytest.raises(UnknownKeyError):
        keycodes("browserback")


def test_vm_config_validation():
    from envs.vm.env import VMConfig

    assert VMConfig(size=[640, 480]).size == (640, 480)
    for bad in ({"size": (10, 10)}, {"input": "vnc"}, {"observe": "x"}, {"domain_type": "xen"}, {"max_steps": 0},
                {"launch": ("xterm",)}, {"boot_timeout_s": 0}, {"revert": "reboot"}):
        with pytest.raises(ValueError):
            VMConfig(**bad)

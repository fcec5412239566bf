"""The VM image builder's pieces: config validation, module resolution, input hashing, the initrd.

Fast: nothing here runs debootstrap. Tests that need the host kernel (``linux-image-amd64``)
or a built image skip with the reason when they are absent.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from envs.errors import EnvSetupError
from envs.vm.image import (
    VMImage,
    VMImageConfig,
    _is_static_elf,
    _module_paths,
    build_initrd,
    inputs_hash,
)


def _kernel_or_skip() -> str:
    kernel = VMImageConfig.__dataclass_fields__["kernel"].default_factory()  # type: ignore[misc]
    if not kernel:
        pytest.skip("no Debian kernel here (apt-get install linux-image-amd64)")
    return kernel


def test_config_validation(tmp_path):
    kernel = _kernel_or_skip()
    cfg = VMImageConfig(root=str(tmp_path), packages=("xterm", "python3", "xterm"), kernel=kernel)
    assert cfg.packages == ("python3", "xterm") and len(cfg.rootfs_hash) == 12
    same = VMImageConfig(root=str(tmp_path), packages=("python3", "xterm"), kernel=kernel)
    assert same.rootfs_hash == cfg.rootfs_hash
    for bad in ({"packages": ()}, {"packages": ("a,b",)}, {"disk_mib": 100}, {"kernel": ""}):
        with pytest.raises(ValueError):
            VMImageConfig(**{"root": str(tmp_path), "kernel": kernel, **bad})


def test_static_elf_detection():
    assert not _is_static_elf("/bin/ls")  # dynamically linked everywhere
    assert not _is_static_elf(__file__)  # not an ELF at all
    if os.path.exists("/bin/busybox") and shutil.which("file"):
        described = subprocess.run(["file", "-L", "/bin/busybox"], capture_output=True, check=True).stdout
        assert _is_static_elf("/bin/busybox") == (b"statically linked" in described)


def test_modules_resolve_with_dependencies_first_and_without_cpu_specific_crypto():
    kernel = _kernel_or_skip()
    names = [Path(p).name for p in _module_paths(kernel)]
    for needed in ("virtio_pci.ko", "virtio_blk.ko", "virtio_console.ko", "ext4.ko"):
        assert any(n.startswith(needed) for n in names), names
    assert len(names) == len(set(names))
    first = {n.split(".ko")[0]: i for i, n in enumerate(names)}
    assert first["virtio"] < first["virtio_pci"] and first["jbd2"] < first["ext4"]
    assert not any("/arch/x86/crypto/" in p for p in _module_paths(kernel))


def test_inputs_hash_tracks_what_the_disk_is_made_of(tmp_path):
    kernel = _kernel_or_skip()
    a = VMImageConfig(root=str(tmp_path), kernel=kernel)
    assert inputs_hash(a) == inputs_hash(VMImageConfig(root=str(tmp_path / "elsewhere"), kernel=kernel))
    assert inputs_hash(a) != inputs_hash(VMImageConfig(root=str(tmp_path), kernel=kernel, disk_mib=4096))
    assert inputs_hash(a) != inputs_hash(VMImageConfig(root=str(tmp_path), kernel=kernel, packages=("xterm",)))


def test_missing_image_says_how_to_build_it(tmp_path):
    with pytest.raises(EnvSetupError, match="build_vm_image.sh"):
        VMImage.load(str(tmp_path))


def test_initrd_holds_busybox_modules_and_init(tmp_path):
    kernel = _kernel_or_skip()
    if not (os.path.exists("/bin/busybox") and _is_static_elf("/bin/busybox")):
        pytest.skip("no static busybox here (apt-get install busybox-static)")
    out = tmp_path / "initrd.img"
    build_initrd(VMImageConfig(root=str(tmp_path), kernel=kernel), out)
    listing = subprocess.run(["cpio", "-t", "--quiet"], input=gzip.decompress(out.read_bytes()), capture_output=True,
                             check=True).stdout.decode().split()
    assert {"init", "bin/busybox", "modules/order"} <= set(listing)
    modules = [n for n in listing if n.startswith("modules/") and n.endswith(".ko")]
    assert len(modules) == len(_module_paths(kernel))


def test_prune_keeps_the_current_base_and_bases_an_overlay_still_uses(tmp_path):
    if not shutil.which("qemu-img"):
        pytest.skip("qemu-img is missing (apt-get install qemu-utils)")
    from envs.vm.image import prune_bases

    for h in ("aaaa", "bbbb", "cccc"):
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(tmp_path / f"base-{h}.qcow2"), "1M"], check=True)
        (tmp_path / f"initrd-{h}.img").write_bytes(b"x")
    run = tmp_path / "run" / "pixelpilot-vm-x"
    run.mkdir(parents=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(tmp_path / "base-bbbb.qcow2"),
                    str(run / "disk.qcow2")], check=True)
    removed = prune_bases(str(tmp_path), keep="cccc")
    assert sorted(Path(p).name for p in removed) == ["base-aaaa.qcow2", "initrd-aaaa.img"]
    assert (tmp_path / "base-bbbb.qcow2").exists() and (tmp_path / "base-cccc.qcow2").exists()

#!/usr/bin/env bash
# Build the pixelpilot VM base image offline (Debian packages only), idempotently: kernel from
# linux-image-amd64, a busybox initramfs, and an ext4 qcow2 made from a debootstrap rootfs with
# Xvfb, openbox, xterm, python3 and the guest controller (see envs/vm/image.py).
# Skips when the inputs are unchanged. Needs root. Pass --force to rebuild, --root DIR to relocate.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m envs.vm.image "$@"

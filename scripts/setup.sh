#!/usr/bin/env bash
# Idempotent setup: system packages, a venv in .venv, the package in editable mode.
# Safe to run again: each step checks whether it is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(xvfb xauth x11-utils xdotool openbox xterm chromium fonts-dejavu-core fonts-liberation
              imagemagick pkg-config libvirt-dev docker.io debootstrap
              mousepad galculator pcmanfm gsettings-desktop-schemas libglib2.0-bin bc
              libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils linux-image-amd64 busybox-static cpio)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[setup] installing apt packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
# torch first, pinned, so nothing pulls a CUDA build.
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/pip install -q torch==2.13.0
stamp=.venv/.pixelpilot-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "[setup] installing pixelpilot (editable) with extras"
  .venv/bin/pip install -q -e ".[all]"
  touch "$stamp"
fi
echo "[setup] ok: $(.venv/bin/python --version), pixelpilot at $(pwd)"

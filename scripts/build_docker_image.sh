#!/usr/bin/env bash
# Build the pixelpilot/desktop docker image offline (debootstrap rootfs + docker import), idempotently:
# nothing is rebuilt when the image's input hash matches (label pixelpilot.inputs). See envs/docker/image.py.
# Needs: root, dockerd running (scripts/start_daemons.sh), debootstrap, the Debian package mirror.
# Usage: scripts/build_docker_image.sh [--force] [--tag T] [--mirror URL]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
exec "$PY" -m envs.docker.image "$@"

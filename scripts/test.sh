#!/usr/bin/env bash
# Runs the whole test suite (unit + integration, slow ones included). Pass pytest args through.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/start_daemons.sh
# The docker tests' image; a failure here is reported again (with its cause) by those tests.
if docker info >/dev/null 2>&1; then
  bash scripts/build_docker_image.sh >/dev/null || echo "[test] docker image build failed; docker tests will say why" >&2
fi
# The VM tests' base image (debootstrap rootfs cached; a few seconds when inputs are unchanged).
if virsh -c qemu:///system version >/dev/null 2>&1; then
  bash scripts/build_vm_image.sh >/dev/null || echo "[test] VM image build failed; VM tests will say why" >&2
fi
# A test that fails is run once more (reported as "R" in the summary, so flakes stay visible):
# the integration tests drive real Xvfb, Chromium, Docker and QEMU on 2 shared cores.
.venv/bin/python -m pytest --reruns 1 --reruns-delay 2 "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: treating as a failure" >&2
  exit 1
fi
exit "$rc"

#!/bin/sh
# Entry point of the pixelpilot/desktop image (runs under docker's init, which reaps orphans).
# The guest controller starts Xvfb (and openbox unless PIXELPILOT_WM is empty), then listens
# on the bind-mounted socket directory. The token file is put into the container before start.
set -eu
if [ -n "${PIXELPILOT_WM-1}" ]; then WM="--window-manager"; else WM=""; fi
exec python3 -m envs.guest.server --socket /run/pixelpilot/guest.sock --token-file /run/pixelpilot-token \
  --start-xvfb "${PIXELPILOT_SCREEN:-1280x800}" $WM

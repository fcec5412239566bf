#!/usr/bin/env bash
# Start the daemons the integration tests need, if they are not running yet (idempotent).
# There is no systemd on these machines: apt installs dockerd but starts nothing.
# - dockerd: started in the background with its log in /var/log/dockerd.log; we poll
#   `docker info` until it answers. No bridge is ever used: pixelpilot containers run with
#   network_mode="none" (see envs/docker/env.py); dockerd itself is started with --bridge=none
#   so it creates no docker0 interface and no NAT rules.
# Prints one line per daemon. Never fails the caller when a daemon cannot start: the tests
# that need it say why they skip.
set -uo pipefail

log() { echo "[start_daemons] $*"; }

docker_ok() { docker info >/dev/null 2>&1; }

start_dockerd() {
  if ! command -v dockerd >/dev/null 2>&1; then
    log "dockerd not installed (apt-get install docker.io, or run scripts/setup.sh); docker tests will skip"
    return 0
  fi
  if docker_ok; then
    log "dockerd already running"
    return 0
  fi
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  local logf=/var/log/dockerd.log
  [ -w /var/log ] || logf=/tmp/dockerd.log
  log "starting dockerd (log: $logf)"
  $SUDO nohup dockerd --bridge=none --iptables=false --ip6tables=false >"$logf" 2>&1 &
  for _ in $(seq 1 150); do   # up to 30 s, polled
    if docker_ok; then
      log "dockerd ready"
      return 0
    fi
    sleep 0.2
  done
  log "dockerd did not answer within 30 s; last log lines:"
  tail -n 15 "$logf" 2>/dev/null || true
  return 0
}

start_dockerd

# - virtlogd + libvirtd (the VM env, envs/vm): started with --daemon (they fork), then we poll
#   `virsh -c qemu:///system version`. Debian defines libvirt's "default" NAT network; it must
#   never run on these machines (no private address ranges), so its autostart is switched off.
#   pixelpilot domains have no network interface at all (envs/vm/domain.py).
libvirt_ok() { virsh -c qemu:///system version >/dev/null 2>&1; }

start_libvirtd() {
  if ! command -v libvirtd >/dev/null 2>&1; then
    log "libvirtd not installed (run scripts/setup.sh); VM tests will skip"
    return 0
  fi
  if libvirt_ok; then
    log "libvirtd already running"
  else
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    pgrep -x virtlogd >/dev/null 2>&1 || $SUDO virtlogd --daemon
    log "starting libvirtd"
    $SUDO libvirtd --daemon
    for _ in $(seq 1 100); do   # up to 20 s, polled
      libvirt_ok && break
      sleep 0.2
    done
    if ! libvirt_ok; then
      log "libvirtd did not answer within 20 s; VM tests will skip"
      return 0
    fi
    log "libvirtd ready"
  fi
  if virsh -c qemu:///system net-info default 2>/dev/null | grep -q '^Autostart: *yes'; then
    virsh -c qemu:///system net-autostart default --disable >/dev/null && log "disabled autostart of libvirt's default NAT network"
  fi
  return 0
}

start_libvirtd

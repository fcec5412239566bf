#!/bin/sh
# PID 1 of the pixelpilot VM guest (no systemd: seconds count under TCG).
# Mounts the kernel filesystems, takes the controller token and screen size from the kernel
# command line (pixelpilot.token=..., pixelpilot.screen=WxH, pixelpilot.wm=0|1), starts a root
# shell on tty1 (what QEMU sendKey types into when the controller is unusable) and runs the guest
# controller on the virtio-serial port org.pixelpilot.guest, restarting it if it exits. The
# controller itself starts Xvfb (+ openbox). As PID 1 this shell also reaps orphaned processes.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
export PYTHONPATH=/opt/pixelpilot PYTHONDONTWRITEBYTECODE=1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
hostname pixelpilot-vm
cd /root

arg() {
  for word in $(cat /proc/cmdline); do
    case "$word" in "$1="*) echo "${word#*=}" ;; esac
  done
}
umask 077
arg pixelpilot.token >/run/pixelpilot-token
umask 022
SCREEN=$(arg pixelpilot.screen)
WM="--window-manager"
[ "$(arg pixelpilot.wm)" = "0" ] && WM=""

PORT=""
for d in /sys/class/virtio-ports/*; do
  [ "$(cat "$d/name" 2>/dev/null)" = "org.pixelpilot.guest" ] && PORT="/dev/$(basename "$d")"
done
echo "pixelpilot-vm: init up $(cut -d' ' -f1 /proc/uptime)s, controller port ${PORT:-missing}" >/dev/ttyS0

setsid sh -c 'exec sh -i </dev/tty1 >/dev/tty1 2>&1' &

while true; do
  python3 -m envs.guest.server --device "$PORT" --token-file /run/pixelpilot-token \
    --start-xvfb "${SCREEN:-1280x800}" $WM >/dev/ttyS0 2>&1
  echo "pixelpilot-vm: controller exited ($?); restarting in 1s" >/dev/ttyS0
  sleep 1
done

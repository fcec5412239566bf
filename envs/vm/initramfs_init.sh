#!/bin/busybox sh
# /init of the pixelpilot VM initramfs (built by envs/vm/image.py): load the virtio and ext4
# modules of the Debian kernel, mount the root disk /dev/vda and hand over to the guest's PID 1
# (envs/vm/guest_init.sh). No udev: devtmpfs creates the device nodes.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules/order); do
  insmod "/modules/$m" || echo "initramfs: insmod $m failed" >/dev/ttyS0
done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
if ! mount -t ext4 -o rw,noatime /dev/vda /newroot; then
  echo "initramfs: cannot mount /dev/vda; dropping to a shell" >/dev/ttyS0
  exec sh </dev/ttyS0 >/dev/ttyS0 2>&1
fi
mount --move /dev /newroot/dev
umount /proc /sys
exec switch_root /newroot /opt/pixelpilot/envs/vm/guest_init.sh

"""The VM environment: a libvirt/QEMU guest running the pixelpilot guest controller.

- ``image``: builds the base image offline (debootstrap rootfs → ext4 qcow2, busybox initramfs, Debian kernel).
- ``domain``: domain XML (no NIC, no graphics listener), lifecycle, snapshots, screenshots, stale cleanup.
- ``keys``: canonical key names → Linux keycodes for QEMU ``sendKey`` (the fallback input path).
- ``env``: ``VMEnv`` / ``VMConfig`` — boot once, snapshot, reset by snapshot revert.

Importing this package needs neither libvirt-python nor a daemon; they are used when an env starts.
"""

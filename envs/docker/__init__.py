"""The docker environment: the desktop image, guest containers and ``DockerEnv``.

- ``image``: builds ``pixelpilot/desktop:latest`` offline (debootstrap + ``docker import``).
- ``container``: one guest container (``network_mode="none"``, limits, socket bind mount).
- ``env``: ``DockerEnv`` / ``DockerConfig`` — a fresh container per episode.
- ``tasks``: the built-in tasks scored through the guest controller.

Importing this package needs neither docker nor a daemon; the SDK is imported when used.
"""

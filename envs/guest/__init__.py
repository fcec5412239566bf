"""The guest controller: one persistent daemon inside a guest session (container, VM, Xvfb).

- ``protocol``: typed requests/responses (frozen dataclasses ↔ JSON + binary body).
- ``transport``: length-prefixed frames over a unix socket or any byte stream (virtio-serial).
- ``backend``: the operations on the guest's X display (screenshot, input, commands, files, windows).
- ``server``: the daemon (``python3 -m envs.guest.server``): token auth, limits, errors as data.
- ``client``: ``GuestClient`` (typed calls) and ``GuestController`` (the task ``Controller``).

Importing this package starts nothing and needs no X server.
"""

from envs.guest.client import (
    GuestAuthError, GuestClient, GuestConnectionError, GuestController, GuestError, GuestRequestError,
    GuestUnsupportedError,
)
from envs.guest.transport import FdStream, FrameStream, SocketStream

__all__ = [
    "FdStream", "FrameStream", "GuestAuthError", "GuestClient", "GuestConnectionError", "GuestController", "GuestError",
    "GuestRequestError", "GuestUnsupportedError", "SocketStream",
]

"""``GuestContainer``: one container of the desktop image with a connected guest controller.

A container runs with ``network_mode="none"`` (no bridge, no interfaces but loopback),
CPU and memory limits, docker's init as PID 1, and one host directory bind-mounted at
``/run/pixelpilot`` where the guest controller creates its unix socket. A fresh random token
is copied into the created container (``/run/pixelpilot-token``, mode 0400) before it
starts, so it never touches the host disk. Ready = the socket accepts an authenticated ping.

Every container carries the labels ``pixelpilot.env=docker`` and ``pixelpilot.owner=<host
pid>``; ``remove_stale`` removes the ones whose owner process is gone (crashed runs), never
a container another live process owns.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from envs.desktop.procs import pid_running
from envs.docker.image import IMAGE, SOCKET_DIR, TOKEN_PATH
from envs.errors import BackendDiedError, EnvSetupError
from envs.guest.client import GuestAuthError, GuestClient, GuestConnectionError

LABEL = "pixelpilot.env"
OWNER_LABEL = "pixelpilot.owner"
SOCKET_DIR_PREFIX = "pp-guest-"


@dataclass(frozen=True)
class ContainerSpec:
    """How to run one guest container.

    Attributes:
        image: local image tag (built by ``scripts/build_docker_image.sh``).
        size: (width, height) of the guest screen.
        window_manager: run openbox in the guest.
        cpus: CPU limit (cores, fractional allowed).
        memory: memory limit in docker syntax (``"1g"``, ``"512m"``).
        start_timeout_s: how long the controller may take to answer after start.
        request_timeout_s: socket timeout for one request (a hung guest raises instead of blocking).
    """

    image: str = IMAGE
    size: tuple[int, int] = (1280, 800)
    window_manager: bool = True
    cpus: float = 1.0
    memory: str = "1g"
    start_timeout_s: float = 60.0
    request_timeout_s: float = 120.0

    def __post_init__(self) -> None:
        size = tuple(self.size)
        if len(size) != 2 or not all(isinstance(v, int) and 64 <= v <= 8192 for v in size):
            raise ValueError(f"size must be (width, height) ints in [64, 8192], got {self.size!r}")
        object.__setattr__(self, "size", size)
        if not 0 < self.cpus <= 256:
            raise ValueError(f"cpus must be in (0, 256], got {self.cpus!r}")
        if not (isinstance(self.memory, str) and self.memory[:-1].isdigit() and self.memory[-1] in "bkmg"):
            raise ValueError(f"memory must look like '512m' or '1g', got {self.memory!r}")
        if not (self.start_timeout_s > 0 and self.request_timeout_s > 0):
            raise ValueError("start_timeout_s and request_timeout_s must be positive")


def docker_client() -> Any:
    """A docker SDK client for the local daemon; ``EnvSetupError`` says how to get one."""
    from envs.docker.image import _client

    return _client()


def _token_tar(token: str) -> bytes:
    buf = io.BytesIO()
    data = token.encode()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(TOKEN_PATH.lstrip("/").rsplit("/", 1)[-1])
        info.size, info.mode, info.mtime = len(data), 0o400, int(time.time())
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class GuestContainer:
    """A started container and an authenticated ``GuestClient`` to its controller."""

    def __init__(self, docker: Any, spec: ContainerSpec) -> None:
        self.spec = spec
        self._docker = docker
        self._dir = tempfile.mkdtemp(prefix=SOCKET_DIR_PREFIX, dir="/tmp")  # short: unix socket paths max 108 bytes
        self.socket_path = os.path.join(self._dir, "guest.sock")
        self._token = secrets.token_hex(32)
        self.container: Any = None
        self.client: GuestClient | None = None
        try:
            self._create_and_start()
            self.client = self._connect()
        except BaseException:
            self.destroy()
            raise

    @property
    def id(self) -> str:
        return str(self.container.id) if self.container is not None else ""

    def _create_and_start(self) -> None:
        import docker as docker_sdk

        spec = self.spec
        try:
            self.container = self._docker.containers.create(
                spec.image, network_mode="none", init=True, detach=True,
                nano_cpus=int(spec.cpus * 1e9), mem_limit=spec.memory,
                labels={LABEL: "docker", OWNER_LABEL: str(os.getpid())},
                volumes={self._dir: {"bind": SOCKET_DIR, "mode": "rw"}},
                environment={"PIXELPILOT_SCREEN": f"{spec.size[0]}x{spec.size[1]}",
                             "PIXELPILOT_WM": "1" if spec.window_manager else ""},
            )
        except docker_sdk.errors.ImageNotFound:
            raise EnvSetupError(f"docker image {spec.image} not found: run scripts/build_docker_image.sh") from None
        self.container.put_archive(os.path.dirname(TOKEN_PATH), _token_tar(self._token))
        self.container.start()

    def _connect(self) -> GuestClient:
        deadline = time.monotonic() + self.spec.start_timeout_s
        delay = 0.005
        while True:
            if os.path.exists(self.socket_path):
                try:
                    client = GuestClient.connect_unix(self.socket_path, self._token, timeout_s=self.spec.request_timeout_s)
                    client.ping()
                    return client
                except GuestAuthError:
                    raise
                except GuestConnectionError:
                    pass  # the socket exists but the daemon is not accepting yet
            if time.monotonic() > deadline:
                raise EnvSetupError(f"the guest controller in container {self.id[:12]} did not answer within "
                                    f"{self.spec.start_timeout_s:.0f}s; its log: {self.logs()}")
            if delay > 0.05 and not self.running():
                raise EnvSetupError(f"container {self.id[:12]} exited before its controller answered: {self.logs()}")
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def running(self) -> bool:
        """Ask the daemon whether the container runs (an API round trip)."""
        if self.container is None:
            return False
        try:
            self.container.reload()
        except Exception:  # noqa: BLE001 - gone from the daemon counts as not running
            return False
        return self.container.status == "running"

    def connection_alive(self) -> bool:
        """Cheap check (no round trip): the guest has not closed our connection."""
        return self.client is not None and not self.client.peer_closed()

    def require_client(self) -> GuestClient:
        if self.client is None:
            raise BackendDiedError("the guest container is gone; call reset() to start a new one")
        return self.client

    def logs(self, tail: int = 20) -> str:
        try:
            return self.container.logs(tail=tail).decode("utf-8", "replace").strip() or "(empty)"
        except Exception as exc:  # noqa: BLE001 - logs are diagnostics only
            return f"(no logs: {exc})"

    def destroy(self) -> None:
        """Close the client, remove the container (killing it), delete the socket dir; idempotent."""
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.container is not None:
            try:
                self.container.remove(force=True)
            except Exception:  # noqa: BLE001 - already removed (or the daemon is gone)
                pass
            self.container = None
        shutil.rmtree(self._dir, ignore_errors=True)


def remove_stale(docker: Any) -> list[str]:
    """Remove pixelpilot guest containers whose owner process is no longer running; returns their ids."""
    removed = []
    for c in docker.containers.list(all=True, filters={"label": f"{LABEL}=docker"}):
        owner = (c.labels or {}).get(OWNER_LABEL, "")
        if owner.isdigit() and pid_running(int(owner)):
            continue
        try:
            c.remove(force=True)
            removed.append(str(c.id))
        except Exception:  # noqa: BLE001 - someone else removed it first
            continue
        for mount in c.attrs.get("Mounts") or ():  # the crashed run's socket directory on this host
            source = str(mount.get("Source", ""))
            if mount.get("Destination") == SOCKET_DIR and os.path.basename(source).startswith(SOCKET_DIR_PREFIX):
                shutil.rmtree(source, ignore_errors=True)
    return removed

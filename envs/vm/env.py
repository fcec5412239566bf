"""``VMEnv``: a GUI environment in a libvirt/QEMU virtual machine, reset by snapshot revert.

The first ``reset`` boots a persistent domain (``envs.vm.domain``) on the env's own qcow2
overlay of the shared base image (``envs.vm.image``), waits until the guest controller answers
over virtio-serial, and takes an internal snapshot ``clean`` (RAM included). Every later
``reset`` reverts to it — seconds instead of a cold boot — so nothing an agent did survives.

Screen and input go through the guest controller (``envs.guest``; the same daemon as in the
docker guest) on the channel's unix socket. ``input="sendkey"`` types with QEMU ``sendKey``
instead (keys only, into whatever has keyboard focus on the VGA console) and
``observe="libvirt"`` takes screenshots with virDomainScreenshot (the VGA console): the
fallback paths when the controller is unusable. The domain has no network interface.

A dead VM (QEMU killed, guest panicked) surfaces as ``BackendDiedError``; the next ``reset``
destroys what is left and cold-boots a new domain. ``close`` destroys and undefines the domain
and deletes its overlay; domains of crashed runs are removed when the next ``VMEnv`` starts.
Tasks: ``reset(options={"task": "terminal-file"})`` uses the docker env's built-in tasks
(``envs.docker.tasks``): they only need a guest controller.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import secrets
import shutil
import time
import weakref
from dataclasses import dataclass
from typing import Any

from envs.actions import Action, Hotkey, TypeText
from envs.base import GUIEnv
from envs.docker.tasks import DockerTask, get_task
from envs.errors import (
    BackendDiedError,
    EnvNotReadyError,
    EnvSetupError,
    InvalidActionError,
)
from envs.guest.client import (
    GuestAuthError,
    GuestClient,
    GuestConnectionError,
)
from envs.guest.env_mixin import GuestEnvMixin, launch_argv
from envs.guest.transport import connect_unix
from envs.observation import Observation
from envs.vm import domain as vmd
from envs.vm.image import DEFAULT_ROOT, VMImage
from envs.vm.keys import chord, text_chords

RESET_OPTIONS = frozenset({"instruction", "launch", "task"})
SNAPSHOT = "clean"
INPUTS = ("controller", "sendkey")
OBSERVERS = ("controller", "libvirt")
REVERTS = ("loadvm", "libvirt")
AUTH_ATTEMPT_S = 8.0  # one connect + auth attempt to the guest controller (TCG guests are slow)


@dataclass(frozen=True)
class VMConfig:
    """Options of a ``VMEnv``.

    Attributes:
        image_root: directory of the built image (``scripts/build_vm_image.sh``).
        run_dir: where per-env overlays and console logs go (readable by libvirt's QEMU user).
        uri: libvirt connection URI.
        domain_type: ``qemu`` (TCG; works here) or ``kvm`` (where /dev/kvm is usable).
        size: (width, height) of the guest's X screen.
        window_manager: run openbox in the guest.
        memory_mib / vcpus: guest size.
        max_steps: step budget per episode.
        input: ``controller`` (XTEST in the guest: every action) or ``sendkey`` (QEMU keys only).
        observe: ``controller`` (the X screen) or ``libvirt`` (the VGA console via virDomainScreenshot).
        revert: ``loadvm`` (the snapshot is loaded into the running QEMU: ~0.5 s, the channel stays
            connected) or ``libvirt`` (``revertToSnapshot``: libvirt restarts QEMU, ~4 s, then reconnects).
        launch: argv lists launched in the guest at every reset (after the task's).
        boot_timeout_s: how long a cold boot may take until the controller answers.
        request_timeout_s: socket timeout of one controller request.
        window_timeout_s: how long a launched app may take to show a window.
        sendkey_hold_ms: how long sendKey holds each chord.
    """

    image_root: str = DEFAULT_ROOT
    run_dir: str = os.path.join(DEFAULT_ROOT, "run")
    uri: str = "qemu:///system"
    domain_type: str = "qemu"
    size: tuple[int, int] = (1280, 800)
    window_manager: bool = True
    memory_mib: int = 768
    vcpus: int = 1
    max_steps: int = 50
    input: str = "controller"
    observe: str = "controller"
    revert: str = "loadvm"
    launch: tuple[tuple[str, ...], ...] = ()
    boot_timeout_s: float = 300.0
    request_timeout_s: float = 120.0
    window_timeout_s: float = 60.0
    sendkey_hold_ms: int = 30

    def __post_init__(self) -> None:
        size = tuple(self.size)
        if len(size) != 2 or not all(isinstance(v, int) and 64 <= v <= 4096 for v in size):
            raise ValueError(f"size must be (width, height) ints in [64, 4096], got {self.size!r}")
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "launch", tuple(tuple(launch_argv(c)) for c in self.launch))
        if self.input not in INPUTS or self.observe not in OBSERVERS:
            raise ValueError(f"input must be one of {INPUTS} and observe one of {OBSERVERS}, got {self.input!r}, "
                             f"{self.observe!r}")
        if self.revert not in REVERTS:
            raise ValueError(f"revert must be one of {REVERTS}, got {self.revert!r}")
        if self.domain_type not in ("qemu", "kvm"):
            raise ValueError(f"domain_type must be 'qemu' (TCG) or 'kvm', got {self.domain_type!r}")
        if isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int) or self.max_steps <= 0:
            raise ValueError(f"max_steps must be a positive int, got {self.max_steps!r}")
        if not (self.boot_timeout_s > 0 and self.request_timeout_s > 0 and self.window_timeout_s > 0):
            raise ValueError("boot_timeout_s, request_timeout_s and window_timeout_s must be positive")
        if not 1 <= self.sendkey_hold_ms <= 1000:
            raise ValueError(f"sendkey_hold_ms must be in [1, 1000], got {self.sendkey_hold_ms}")


class _Machine:
    """One booted domain: its overlay, its controller connection and its clean snapshot."""

    def __init__(self, conn: Any, config: VMConfig, image: VMImage) -> None:
        self.conn, self.config = conn, config
        self.name = f"{vmd.NAME_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        self.dir = os.path.join(config.run_dir, self.name)
        self.token = secrets.token_hex(32)
        self.base = image.disk
        self.client: GuestClient | None = None
        self.dom: Any = None
        os.makedirs(self.dir, mode=0o755)
        w, h = config.size
        self.spec = vmd.DomainSpec(
            name=self.name, kernel=image.kernel, initrd=image.initrd, disk=os.path.join(self.dir, "disk.qcow2"),
            console_log=os.path.join(self.dir, "console.log"), memory_mib=config.memory_mib, vcpus=config.vcpus,
            domain_type=config.domain_type,
            cmdline=(f"pixelpilot.token={self.token}", f"pixelpilot.screen={w}x{h}",
                     f"pixelpilot.wm={int(config.window_manager)}"))

    def boot(self) -> dict[str, float]:
        """Cold boot → controller ready → snapshot; returns the timings."""
        t0 = time.perf_counter()
        vmd.create_overlay(self.base, self.spec.disk)
        self.dom = vmd.define_and_start(self.conn, self.spec)
        self.client = self._connect(self.config.boot_timeout_s)
        t1 = time.perf_counter()
        vmd.create_snapshot(self.dom, SNAPSHOT)
        return {"boot_s": t1 - t0, "snapshot_s": time.perf_counter() - t1}

    def _connect(self, timeout_s: float) -> GuestClient:
        """Connect to the channel socket and authenticate, retrying until ``timeout_s``.

        Bytes wait in QEMU until the guest opens its port, so Auth doubles as the readiness
        probe. Each attempt gets ``AUTH_ATTEMPT_S``: a guest that was reopening its port just as
        we connected may have dropped our first bytes, and a fresh connection resynchronises it.
        """
        deadline = time.monotonic() + timeout_s
        error: BaseException | None = None
        while time.monotonic() < deadline:
            if not vmd.is_running(self.dom):
                raise BackendDiedError(f"{self.name} stopped before its controller answered; {self.console_tail()}")
            try:
                attempt_s = min(AUTH_ATTEMPT_S, max(0.1, deadline - time.monotonic()))
                stream = connect_unix(vmd.channel_path(self.dom), attempt_s)
            except OSError as exc:  # QEMU creates the socket a moment after the domain starts
                error = exc
                time.sleep(0.05)
                continue
            try:
                client = GuestClient(stream, self.token)
            except GuestAuthError:
                stream.close()
                raise
            except (GuestConnectionError, OSError) as exc:
                stream.close()
                error = exc
                continue
            stream.sock.settimeout(self.config.request_timeout_s)
            return client
        raise EnvSetupError(f"the guest controller of {self.name} did not answer within {timeout_s:.0f}s ({error}); "
                            f"{self.console_tail()}")

    def revert(self) -> float:
        """Back to the clean snapshot; the controller connection is checked (and reopened if needed)."""
        t0 = time.perf_counter()
        if self.config.revert == "loadvm":
            vmd.load_snapshot(self.dom, SNAPSHOT)
        else:
            vmd.revert(self.dom, SNAPSHOT)
        try:
            self.require_client().ping()
        except GuestConnectionError:  # libvirt's revert restarted QEMU: the channel is a new socket
            self.client = self._connect(self.config.boot_timeout_s)
        return time.perf_counter() - t0

    def require_client(self) -> GuestClient:
        if self.client is None:
            raise BackendDiedError(f"{self.name}: no controller connection; call reset()")
        return self.client

    def connection_alive(self) -> bool:
        """No round trip: has the guest side closed our idle connection?"""
        return self.client is not None and not self.client.peer_closed()

    def console_tail(self, n: int = 800) -> str:
        try:
            with open(self.spec.console_log, "rb") as fh:
                data = fh.read()[-n:].decode("utf-8", "replace").strip()
        except OSError:
            data = ""
        return f"console log {self.spec.console_log}: {data or '(empty)'}"

    def destroy(self) -> None:
        """Close the client, destroy + undefine the domain, delete overlay and log; idempotent."""
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.dom is not None:
            vmd.undefine(self.dom)
            self.dom = None
        shutil.rmtree(self.dir, ignore_errors=True)


def _destroy_all(live: list[_Machine]) -> None:
    while live:
        live.pop().destroy()


class VMEnv(GuestEnvMixin, GUIEnv):
    """``with VMEnv(size=(800, 600)) as env: obs, _ = env.reset(options={"task": "terminal-file"})``."""

    name = "vm"

    def __init__(self, config: VMConfig | None = None, **overrides: Any) -> None:
        self.config = dataclasses.replace(config or VMConfig(), **overrides)
        super().__init__(max_steps=self.config.max_steps)
        self.image = VMImage.load(self.config.image_root)
        self._conn = vmd.connect(self.config.uri)
        self.stale_removed = vmd.remove_stale(self._conn)
        os.makedirs(self.config.run_dir, mode=0o755, exist_ok=True)
        self._machine: _Machine | None = None
        self._task: DockerTask | None = None
        self._seed = 0
        self.timings: dict[str, float] = {}
        self._live: list[_Machine] = []
        self._finalizer = weakref.finalize(self, _destroy_all, self._live)
        atexit.register(self._finalizer)

    # -- public extras ------------------------------------------------------------------------
    @property
    def screen_size(self) -> tuple[int, int]:
        return self.config.size

    @property
    def client(self) -> GuestClient:
        """The guest controller client of the current VM."""
        if self._machine is None:
            raise EnvNotReadyError("the vm env has no machine; call reset() first")
        return self._machine.require_client()

    @property
    def domain_name(self) -> str:
        return self._machine.name if self._machine is not None else ""

    @property
    def domain(self) -> Any:
        """The libvirt domain object of the current VM (None before the first reset)."""
        return self._machine.dom if self._machine is not None else None

    def qemu_pid(self) -> int | None:
        """PID of the current VM's QEMU process (what a fault test kills)."""
        return vmd.qemu_pid(self.domain) if self.domain is not None else None

    def vga_screenshot(self) -> Any:
        """The VGA console via virDomainScreenshot (the fallback observation path)."""
        if self.domain is None:
            raise EnvNotReadyError("the vm env has no machine; call reset() first")
        return vmd.screenshot(self._conn, self.domain)

    # -- GUIEnv hooks -------------------------------------------------------------------------
    def _start(self, seed: int | None, options: dict[str, Any]) -> str:
        unknown = set(options) - RESET_OPTIONS
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; the vm env accepts {sorted(RESET_OPTIONS)}")
        task = get_task(str(options["task"])) if "task" in options else None
        launches = tuple(launch_argv(c) for c in options.get("launch", ()))
        if self._machine is None:
            self._cold_start()
        else:
            self.timings = {"revert_s": self._machine.revert()}
        self._task, self._seed = task, int(seed or 0)
        for argv in (task.launch if task else ()) + self.config.launch + launches:
            self.launch(argv)
        if task is not None:
            return task.instruction(self._seed)
        return str(options.get("instruction", ""))

    def _cold_start(self) -> None:
        machine = _Machine(self._conn, self.config, self.image)
        self._live.append(machine)
        try:
            self.timings = machine.boot()
        except BaseException:
            machine.destroy()
            self._live.remove(machine)
            raise
        self._machine = machine

    def _execute(self, action: Action) -> dict[str, Any]:
        if self.config.input == "sendkey":
            return self.send_keys(action)
        with self._died("input"):
            return self.client.execute(action)

    def send_keys(self, action: Action) -> dict[str, Any]:
        """Type ``action`` (TypeText or Hotkey) with QEMU sendKey: the fallback input path, usable at any time."""
        if self.domain is None:
            raise EnvNotReadyError("the vm env has no machine; call reset() first")
        if isinstance(action, TypeText):
            chords = text_chords(action.text)
        elif isinstance(action, Hotkey):
            chords = [chord(action.keys)]
        else:
            raise InvalidActionError(f"{action.kind} needs the guest controller: with input='sendkey' only type and "
                                     "hotkey actions work (QEMU sendKey has no pointer)")
        libvirt = vmd.libvirt_module()
        try:
            for codes in chords:
                self.domain.sendKey(libvirt.VIR_KEYCODE_SET_LINUX, self.config.sendkey_hold_ms, codes, len(codes), 0)
        except libvirt.libvirtError as exc:
            raise BackendDiedError(f"vm env: sendKey to {self.domain_name} failed ({exc}); call reset()") from None
        return {"input": "sendkey", "chords": len(chords)}

    def _observe(self) -> Observation:
        extra = {"domain": self.domain_name}
        if self.config.observe == "libvirt":
            pixels = self.vga_screenshot()
            extra["source"] = "vga"
        else:
            with self._died("screenshot"):
                pixels = self.client.screenshot()
        return Observation(screenshot=pixels, instruction=self._instruction, extra=extra)

    def _alive(self) -> bool:
        m = self._machine
        return m is not None and m.connection_alive() and vmd.is_running(m.dom)

    def _shutdown(self) -> None:
        machine, self._machine = self._machine, None
        if machine is not None:
            machine.destroy()
            if machine in self._live:
                self._live.remove(machine)
        if self._closed:
            _destroy_all(self._live)
            self._conn.close()

    # -- helpers ------------------------------------------------------------------------------
    def _died_message(self, what: str, exc: Exception) -> str:
        return f"vm env: {self.domain_name} died during {what} ({exc}); call reset() to boot a new VM"

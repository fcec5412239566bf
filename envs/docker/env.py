"""``DockerEnv``: a GUI environment in a container of the pixelpilot desktop image.

Every episode gets a fresh container (``reset``): nothing an agent did survives into the
next episode. To keep reset fast, the next container is started in the background while the
current episode runs (``prestart``), so a reset swaps containers instead of waiting for one
to boot; the old one is removed in the background. Screen and input go through the guest
controller (``envs.guest``) over the bind-mounted unix socket; there is no network at all in
the container (``network_mode="none"``).

A dead container (killed, OOM, crashed controller) surfaces as ``BackendDiedError`` on the
next step, and ``reset()`` replaces it. Containers are removed on ``close()``, at interpreter
exit, and — for runs that crashed without either — by ``remove_stale`` when the next
``DockerEnv`` starts.

Tasks: ``reset(options={"task": "terminal-file"})`` picks a built-in task
(``envs.docker.tasks``), which sets the instruction and is scored on ``Done`` through the
controller. Without a task the env has reward 0 and the instruction from options.
"""

from __future__ import annotations

import atexit
import dataclasses
import threading
import weakref
from dataclasses import dataclass
from typing import Any

from envs.actions import Action
from envs.base import GUIEnv
from envs.docker.container import (
    ContainerSpec,
    GuestContainer,
    docker_client,
    remove_stale,
)
from envs.docker.image import IMAGE
from envs.docker.tasks import DockerTask, get_task
from envs.errors import EnvNotReadyError, EnvSetupError
from envs.guest.client import GuestClient
from envs.guest.env_mixin import GuestEnvMixin, launch_argv
from envs.observation import Observation

RESET_OPTIONS = frozenset({"instruction", "launch", "task"})


@dataclass(frozen=True)
class DockerConfig:
    """Options of a ``DockerEnv`` (container limits live in ``ContainerSpec`` fields here too).

    Attributes:
        image: local image tag (``scripts/build_docker_image.sh`` builds it).
        size: (width, height) of the guest screen.
        window_manager: run openbox in the guest (focus on click, decorations).
        max_steps: step budget per episode.
        cpus / memory: container limits.
        launch: argv lists launched in the guest at every reset (after the task's).
        prestart: keep the next container booting in the background for a fast reset.
        window_timeout_s: how long a launched app may take to show a window.
        start_timeout_s: how long a container's controller may take to answer.
    """

    image: str = IMAGE
    size: tuple[int, int] = (1280, 800)
    window_manager: bool = True
    max_steps: int = 50
    cpus: float = 1.0
    memory: str = "1g"
    launch: tuple[tuple[str, ...], ...] = ()
    prestart: bool = True
    window_timeout_s: float = 30.0
    start_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        self.spec()  # validates size, limits and timeouts
        object.__setattr__(self, "size", tuple(self.size))
        object.__setattr__(self, "launch", tuple(tuple(launch_argv(c)) for c in self.launch))
        if isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int) or self.max_steps <= 0:
            raise ValueError(f"max_steps must be a positive int, got {self.max_steps!r}")
        if not self.window_timeout_s > 0:
            raise ValueError(f"window_timeout_s must be positive, got {self.window_timeout_s!r}")

    def spec(self) -> ContainerSpec:
        return ContainerSpec(image=self.image, size=tuple(self.size), window_manager=self.window_manager,
                             cpus=self.cpus, memory=self.memory, start_timeout_s=self.start_timeout_s)


class _Spare:
    """A container being started on a background thread (with its own docker client)."""

    def __init__(self, spec: ContainerSpec) -> None:
        self.result: GuestContainer | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(spec,), name="docker-spare", daemon=True)
        self._thread.start()

    def _run(self, spec: ContainerSpec) -> None:
        try:
            container = GuestContainer(docker_client(), spec)
            self.result = container
            # The first grab on a connection sets up the guest's capture (mss, shared memory):
            # do it now, while the episode runs, not in the next reset.
            container.require_client().screenshot()
        except BaseException as exc:  # noqa: BLE001 - handed to the thread that takes the spare
            self.error = exc

    def take(self) -> GuestContainer:
        self._thread.join()
        if self.result is None:
            raise self.error if self.error is not None else EnvSetupError("spare container did not start")
        return self.result

    def discard(self) -> None:
        self._thread.join()
        if self.result is not None:
            self.result.destroy()


def _destroy_all(live: list[Any]) -> None:
    while live:
        item = live.pop()
        item.discard() if isinstance(item, _Spare) else item.destroy()


class DockerEnv(GuestEnvMixin, GUIEnv):
    """``with DockerEnv(size=(1024, 768)) as env: obs, _ = env.reset(options={"task": "terminal-file"})``."""

    name = "docker"

    def __init__(self, config: DockerConfig | None = None, **overrides: Any) -> None:
        self.config = dataclasses.replace(config or DockerConfig(), **overrides)
        super().__init__(max_steps=self.config.max_steps)
        self._docker = docker_client()
        self.stale_removed = remove_stale(self._docker)
        self._current: GuestContainer | None = None
        self._spare: _Spare | None = None
        self._task: DockerTask | None = None
        self._seed = 0
        self._reapers: list[threading.Thread] = []
        self._retired: list[GuestContainer] = []  # removed in the background after the next reset
        self._live: list[Any] = []  # containers and spares to remove if nobody calls close()
        self._finalizer = weakref.finalize(self, _destroy_all, self._live)
        atexit.register(self._finalizer)

    # -- public extras ------------------------------------------------------------------------
    @property
    def screen_size(self) -> tuple[int, int]:
        return self.config.size

    @property
    def client(self) -> GuestClient:
        """The guest controller client of the current container."""
        if self._current is None:
            raise EnvNotReadyError("the docker env has no container; call reset() first")
        return self._current.require_client()

    def wait_for_spare(self) -> None:
        """Block until the prestarted container is booted (benchmarks; an episode normally covers it)."""
        spare = self._spare
        if spare is not None:
            spare._thread.join()

    @property
    def container_id(self) -> str:
        return self._current.id if self._current is not None else ""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Observation, dict[str, Any]]:
        """A fresh container for a new episode; see ``GUIEnv.reset``.

        Background work (removing the old container, booting the next spare) starts only
        once the new episode's first observation is taken, so it does not slow the reset.
        """
        try:
            return super().reset(seed=seed, options=options)
        finally:
            self._start_background_work()

    def _start_background_work(self) -> None:
        if self._closed:
            return
        retired, self._retired = self._retired, []
        self._reapers = [t for t in self._reapers if t.is_alive()]
        for old in retired:
            thread = threading.Thread(target=self._reap, args=(old,), name="docker-reap", daemon=True)
            thread.start()
            self._reapers.append(thread)
        if self.config.prestart and self._spare is None:
            self._spare = _Spare(self.config.spec())
            self._live.append(self._spare)

    def _reap(self, old: GuestContainer) -> None:
        old.destroy()
        if old in self._live:
            self._live.remove(old)

    # -- GUIEnv hooks -------------------------------------------------------------------------
    def _start(self, seed: int | None, options: dict[str, Any]) -> str:
        unknown = set(options) - RESET_OPTIONS
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; the docker env accepts {sorted(RESET_OPTIONS)}")
        task = get_task(str(options["task"])) if "task" in options else None
        launches = tuple(launch_argv(c) for c in options.get("launch", ()))
        self._retire_current()
        self._current = self._take_container()
        self._task, self._seed = task, int(seed or 0)
        for argv in (task.launch if task else ()) + self.config.launch + launches:
            self.launch(argv)
        if task is not None:
            return task.instruction(self._seed)
        return str(options.get("instruction", ""))

    def _execute(self, action: Action) -> dict[str, Any]:
        with self._died("input"):
            return self.client.execute(action)

    def _observe(self) -> Observation:
        with self._died("screenshot"):
            pixels = self.client.screenshot()
        return Observation(screenshot=pixels, instruction=self._instruction, extra={"container": self.container_id[:12]})

    def _alive(self) -> bool:
        return self._current is not None and self._current.connection_alive()

    def _shutdown(self) -> None:
        self._retire_current()
        if self._closed:
            for old in self._retired:
                old.destroy()
            self._retired.clear()
            if self._spare is not None:
                self._spare.discard()
                self._spare = None
            for t in self._reapers:
                t.join()
            self._reapers.clear()
            _destroy_all(self._live)

    # -- helpers ------------------------------------------------------------------------------
    def _take_container(self) -> GuestContainer:
        spare, self._spare = self._spare, None
        if spare is not None:
            self._live.remove(spare)
            try:
                container = spare.take()
                if container.connection_alive():
                    self._live.append(container)
                    return container
                container.destroy()
            except Exception:  # noqa: BLE001 - a failed spare is replaced by a synchronous start below
                pass
        container = GuestContainer(self._docker, self.config.spec())
        self._live.append(container)
        return container

    def _retire_current(self) -> None:
        """Hand the current container to the background reaper (removal takes ~0.2-0.8 s)."""
        old, self._current = self._current, None
        if old is None:
            return
        if old.client is not None:
            old.client.close()
        if self._closed:
            old.destroy()
            if old in self._live:
                self._live.remove(old)
        else:
            self._retired.append(old)

    def _died_message(self, what: str, exc: Exception) -> str:
        return (f"docker env: container {self.container_id[:12]} died during {what} ({exc}); "
                "call reset() to start a new one")

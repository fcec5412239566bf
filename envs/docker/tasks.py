"""Built-in tasks of the docker env: small real jobs in the guest desktop, scored through the controller.

A task says what to launch at reset, the instruction (deterministic in the seed), how to
score the guest state when the agent says ``Done`` (through ``GuestController``, never by
looking at pixels), and a scripted solution in screen pixels (what a collection expert
replays). Tasks are looked up in the explicit ``DOCKER_TASKS`` registry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from envs.actions import Action, Click, Done, TypeText
from envs.tasks.controller import Controller

XTERM = ("xterm", "-geometry", "80x24+0+0")
SETTLE_S = 5.0  # how long a check waits for the guest to reach the expected state


@dataclass(frozen=True)
class DockerTask:
    """One task: launch, instruction, scoring and a scripted solution."""

    name: str
    launch: tuple[tuple[str, ...], ...]
    instruction: Callable[[int], str]
    check: Callable[[Controller, int], bool]
    solution: Callable[[int, tuple[int, int]], tuple[Action, ...]]

    def __post_init__(self) -> None:
        if not self.name or not all(argv for argv in self.launch):
            raise ValueError(f"a task needs a name and non-empty launch commands, got {self.name!r} {self.launch!r}")


def _word(seed: int) -> str:
    return f"pixelpilot-{seed % 100000:05d}"


def _terminal_file_check(controller: Controller, seed: int) -> bool:
    # The shell runs the typed command a moment after Enter: give it a short settle time.
    deadline = time.monotonic() + SETTLE_S
    while True:
        try:
            if controller.read_file("/root/out.txt").decode("utf-8", "replace").strip() == _word(seed):
                return True
        except FileNotFoundError:
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _terminal_file_solution(seed: int, screen: tuple[int, int]) -> tuple[Action, ...]:
    # The xterm sits at the top-left corner (geometry +0+0); clicking inside focuses it.
    x, y = min(100, screen[0] - 1), min(60, screen[1] - 1)
    return (Click(x, y), TypeText(f"echo {_word(seed)} > /root/out.txt\n"), Done())


DOCKER_TASKS: dict[str, DockerTask] = {
    "terminal-file": DockerTask(
        name="terminal-file",
        launch=(XTERM,),
        instruction=lambda seed: f"Using the terminal, create the file /root/out.txt containing the text {_word(seed)}.",
        check=_terminal_file_check,
        solution=_terminal_file_solution,
    ),
}


def get_task(name: str) -> DockerTask:
    """The registered task ``name``; ``ValueError`` lists the known ones."""
    try:
        return DOCKER_TASKS[name]
    except KeyError:
        raise ValueError(f"unknown docker task {name!r}; known: {sorted(DOCKER_TASKS)}") from None

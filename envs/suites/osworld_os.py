"""Scripted solutions of the OSWorld ``os``-domain tasks that run here, and why the others do not.

The task files are OSWorld's own (``/work/shared/osworld/examples/os``), run unchanged on a
``TaskEnv`` configured like OSWorld's desktop as far as this machine allows (``task_env_kwargs``):
a terminal titled "Terminal" is open at every reset (the Ubuntu VM has one a shortcut away),
``/home/user`` means the sandbox home, and GNOME settings live in the sandbox through
``GSETTINGS_BACKEND=keyfile`` (``gsettings-desktop-schemas`` provides the schemas).

``SOLUTIONS`` maps task id -> solution (same shape as ``envs.suites.desktop.solutions``);
``SKIPPED`` maps the other task ids to the reason they cannot run here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from envs.actions import Action, Fail
from envs.suites.desktop.solutions import Solution, terminal
from envs.tasks.task_env import TaskEnv

OSWORLD_OS_DIR = "/work/shared/osworld/examples/os"


def task_env_kwargs() -> dict[str, Any]:
    """Keyword arguments of ``TaskEnv`` that stand in for OSWorld's Ubuntu desktop."""
    return {"session_apps": [["xterm", "-title", "Terminal"]], "home_alias": "/home/user"}


def _gsettings(schema: str, key: str, value: str) -> Solution:
    def solve(env: TaskEnv) -> Iterator[Action]:
        yield from terminal(env, f"gsettings set {schema} {key} {value}")
    solve.__doc__ = f"Terminal: gsettings set {schema} {key} {value}"
    return solve


def _infeasible(reason: str) -> Solution:
    def solve(env: TaskEnv) -> Iterator[Action]:
        yield Fail(reason)
    solve.__doc__ = f"Infeasible: {reason}"
    return solve


SOLUTIONS: dict[str, Solution] = {
    # "automatically locked after I leave"
    "a4d98375-215b-4a4d-aee9-3d4370fccc41": _gsettings("org.gnome.desktop.screensaver", "lock-enabled", "true"),
    # "set 'Dim screen when inactive' to off" (idle-delay 0 is one of the two accepted answers)
    "bedcedc4-4d72-425e-ad62-21960b11fe0d": _gsettings("org.gnome.desktop.session", "idle-delay", "0"),
    # "switch to 'Do not disturb' mode"
    "f9be0997-4b7c-45c5-b05c-4612b44a6118": _gsettings("org.gnome.desktop.notifications", "show-banners", "false"),
    # "enlarge the text on my screen"
    "3ce045a0-877b-42aa-8d2c-b4a863336ab8": _gsettings("org.gnome.desktop.interface", "text-scaling-factor", "1.5"),
    "4783cc41-c03c-4e1b-89b4-50658f642bd5": _infeasible("\"$sourceDir\" and \"$targetDir\" are not defined"),
    "a462a795-fdc7-4b23-b689-e8b6df786b78": _infeasible("the user Charles does not exist"),
    "b3d4a89c-53f2-4d6b-8b6a-541fb5d205fa": _infeasible("this machine has no Bluetooth adapter"),
    "c288e301-e626-4b98-a1ab-159dcb162af5": _infeasible("there is no Python 4"),
    "fe41f596-a71b-4c2f-9b2f-9dcd40b568c3": _infeasible("this machine has no battery"),
}

_NEEDS_MIRROR = "its setup or gold files come from huggingface.co; no local mirror here (network rule)"
SKIPPED: dict[str, str] = {
    "13584542-872b-42d8-b299-866967b5c3ef": "evaluates the terminal's text through AT-SPI (vm_terminal_output), "
                                            "which this machine does not run; postconfig opens a GNOME terminal with ctrl+alt+t",
    "28cc3b7e-b194-4bc9-8353-d04c0f4d56d2": "needs a PulseAudio sound server (pactl); none runs here",
    "94d95f96-9699-4208-98ba-3c3119edf9c2": "installing Spotify needs the internet (network rule)",
    "e0df059f-28a6-4169-924f-b9623e7184cc": "setup runs `sudo -S` with the VM's password; no sudo here",
    "b6781586-6346-41cd-935a-a6b1487918fc": "metric is_utc_0 is not implemented (needs timedatectl/systemd)",
    "ec4e3f68-9ea4-4c18-a5c9-69f89d1178b3": "metric check_gnome_favorite_apps is not implemented (GNOME Shell dock)",
    **{task_id: _NEEDS_MIRROR for task_id in (
        "23393935-50c7-4a86-aeea-2b78fd089c5c", "37887e8c-da15-4192-923c-08fa390a176d",
        "4127319a-8b79-4410-b58a-7a151e15f3d7", "4d117223-a354-47fb-8b45-62ab1390a95f",
        "5812b315-e7bd-4265-b51f-863c02174c28", "5c1075ca-bb34-46a3-a7a0-029bd7463e79", "5ced85fc-fa1a-4217-95fd-0fb530545ce2",
        "5ea617a3-0e86-4ba6-aab2-dac9aa2e8d57", "6f56bf42-85b8-4fbb-8e06-6c44960184ba")},
}

__all__ = ["OSWORLD_OS_DIR", "SKIPPED", "SOLUTIONS", "task_env_kwargs"]

"""run_setup against the real LocalController: files, downloads from a local HTTP server, commands, windows."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from envs.tasks.errors import NetworkPolicyError, SetupError
from envs.tasks.fetch import FetchPolicy, is_local_url
from envs.tasks.local_controller import LocalController
from envs.tasks.setup_runner import SetupContext, run_setup
from envs.tasks.setup_steps import parse_step


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "www"
    root.mkdir()
    (root / "data.bin").write_bytes(b"x" * 1000)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture()
def ctrl() -> Iterator[LocalController]:
    with LocalController(display="") as c:
        yield c


def steps(*raw: dict) -> list:
    return [parse_step(r, f"config[{i}]") for i, r in enumerate(raw)]


def test_download_from_local_http_and_file_urls(tmp_path: Path, server: str, ctrl: LocalController) -> None:
    src = tmp_path / "src.txt"
    src.write_text("hello")
    ctx = SetupContext(tmp_path / "cache")
    result = run_setup(steps({"type": "download", "parameters": {"files": [
        {"url": f"{server}/data.bin", "path": str(tmp_path / "out" / "data.bin")},
        {"url": src.as_uri(), "path": str(tmp_path / "out" / "src.txt"), "size": 5}]}}), ctrl, ctx)
    assert (tmp_path / "out" / "data.bin").stat().st_size == 1000
    assert (tmp_path / "out" / "src.txt").read_text() == "hello"
    assert result.steps[0].type == "download" and "sizes checked" in result.steps[0].detail
    with pytest.raises(SetupError, match="expects 6"):
        run_setup(steps({"type": "download", "parameters": {"files": [
            {"url": src.as_uri(), "path": str(tmp_path / "x"), "size": 6}]}}), ctrl, ctx)


def test_remote_urls_need_a_mirror(tmp_path: Path, ctrl: LocalController) -> None:
    url = "https://huggingface.co/datasets/x/resolve/main/a%20b.txt"
    assert not is_local_url(url) and is_local_url("http://127.0.0.1:9/x") and is_local_url("file:///etc/hosts")
    raw = {"type": "download", "parameters": {"files": [{"url": url, "path": str(tmp_path / "a.txt")}]}}
    with pytest.raises(SetupError, match="mirror") as err:
        run_setup(steps(raw), ctrl, SetupContext(tmp_path / "cache"))
    assert isinstance(err.value.__cause__, NetworkPolicyError) and err.value.index == 0
    mirror = tmp_path / "mirror"
    (mirror / "huggingface.co/datasets/x/resolve/main").mkdir(parents=True)
    (mirror / "huggingface.co/datasets/x/resolve/main/a b.txt").write_text("mirrored")
    run_setup(steps(raw), ctrl, SetupContext(tmp_path / "cache", FetchPolicy(mirror)))
    assert (tmp_path / "a.txt").read_text() == "mirrored"
    with pytest.raises(NetworkPolicyError, match="escapes"):
        FetchPolicy(mirror).fetch("https://evil.example/../../etc/passwd")


def test_execute_writes_stdout_to_cache_and_polls_until(tmp_path: Path, ctrl: LocalController) -> None:
    counter = tmp_path / "n"
    script = f"n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; echo count=$n"
    ctx = SetupContext(tmp_path / "cache")
    result = run_setup(steps(
        {"type": "execute", "parameters": {"command": ["echo", "hi"], "stdout": "echo.out"}},
        {"type": "command", "parameters": {"command": script, "shell": True, "until": {"stdout": "count=3"},
                                           "timeout": 20}},
    ), ctrl, SetupContext(ctx.cache_dir))
    assert (ctx.cache_dir / "echo.out").read_text() == "hi\n"
    assert counter.read_text().strip() == "3" and "met" in result.steps[1].detail


def test_execute_failures_become_setup_errors(tmp_path: Path, ctrl: LocalController) -> None:
    ctx = SetupContext(tmp_path / "cache")
    with pytest.raises(SetupError, match="did not finish within 1s"):
        run_setup(steps({"type": "execute", "parameters": {"command": ["sleep", "30"], "timeout": 1}}), ctrl, ctx)
    with pytest.raises(SetupError, match="not met"):
        run_setup(steps({"type": "execute", "parameters": {"command": ["true"], "until": {"stdout": "never"},
                                                           "timeout": 1.5}}), ctrl, ctx)
    # the exit status alone is recorded, not enforced (OSWorld runs `killall x` style commands)
    res = run_setup(steps({"type": "execute", "parameters": {"command": ["false"]}}), ctrl, ctx)
    assert res.steps[0].detail == "exit status 1"


def test_launch_and_unsupported_steps(tmp_path: Path, ctrl: LocalController) -> None:
    ctx = SetupContext(tmp_path / "cache", sleep_scale=0.0)
    res = run_setup(steps({"type": "launch", "parameters": {"command": ["sleep", "30"]}},
                          {"type": "sleep", "parameters": {"seconds": 5}}), ctrl, ctx)
    assert "running" in res.steps[0].detail and res.steps[1].detail == "slept 0.00s"
    with pytest.raises(SetupError, match="could not be started"):
        run_setup(steps({"type": "launch", "parameters": {"command": "no-such-program-xyz --flag", "shell": True}}), ctrl, ctx)
    with pytest.raises(SetupError, match="Google Drive"):
        run_setup(steps({"type": "googledrive", "parameters": {"settings_file": "s", "operation": [], "args": []}}), ctrl, ctx)
    with pytest.raises(SetupError, match="X display"):
        run_setup(steps({"type": "activate_window", "parameters": {"window_name": "x"}}), ctrl, ctx)
    with pytest.raises(SetupError, match="only file://"):
        run_setup(steps({"type": "chrome_open_tabs", "parameters": {"urls_to_open": ["https://example.com"]}}), ctrl, ctx)


def test_close_ends_launched_processes(tmp_path: Path) -> None:
    ctrl = LocalController(display="")
    pid = ctrl.launch("sleep 30 & sleep 30; wait", shell=True)
    assert ctrl.process_returncode(pid) is None
    ctrl.close()
    assert _live_group_members(pid) == []  # the whole group is gone (zombies left to init do not count)


def _live_group_members(pgid: int) -> list[int]:
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            live.append(int(stat.parent.name))
    return live


@pytest.fixture()
def xdisplay() -> Iterator[str]:
    if not (shutil.which("Xvfb") and shutil.which("openbox") and shutil.which("xterm") and shutil.which("xdotool")):
        pytest.skip("needs Xvfb, openbox, xterm and xdotool")
    num = next(n for n in range(150, 250) if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists())
    xvfb = subprocess.Popen(["Xvfb", f":{num}", "-screen", "0", "800x600x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not Path(f"/tmp/.X11-unix/X{num}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    wm = subprocess.Popen(["openbox"], env={**os.environ, "DISPLAY": f":{num}"}, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        yield f":{num}"
    finally:
        for proc in (wm, xvfb):
            proc.terminate()
            proc.wait(timeout=10)


@pytest.mark.integration
def test_windows_on_real_xvfb(tmp_path: Path, xdisplay: str) -> None:
    with LocalController(display=xdisplay) as ctrl:
        ctx = SetupContext(tmp_path / "cache")
        res = run_setup(steps(
            {"type": "launch", "parameters": {"command": ["xterm", "-T", "first-term"], "timeout": 20}},
            {"type": "launch", "parameters": {"command": ["xterm", "-T", "second-term"], "timeout": 20}},
            {"type": "activate_window", "parameters": {"window_name": "first-term", "strict": True}},
        ), ctrl, ctx)
        assert "appeared" in res.steps[0].detail
        active = ctrl.active_window()
        assert active is not None and active.title == "first-term" and "xterm" in active.wm_class.lower()
        assert ctrl.screenshot().shape == (600, 800, 3)
        run_setup(steps({"type": "close_window", "parameters": {"window_name": "second-term"}}), ctrl, ctx)
        assert [w.title for w in ctrl.list_windows()] == ["first-term"]
        with pytest.raises(SetupError, match="no window matching"):
            run_setup(steps({"type": "activate_window", "parameters": {"window_name": "nope", "timeout": 0.5}}), ctrl, ctx)

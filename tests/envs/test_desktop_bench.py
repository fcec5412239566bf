"""benchmarks/step_overhead.py runs end to end (tiny settings) and writes well-formed JSON.

Only the shape of the results is checked: tests never assert timings.
"""

from __future__ import annotations

import json
import math

import pytest

from envs.actions import Click, Move
from tests.benchmarks import load_benchmark
from tests.envs.conftest import require_x_tools


def test_random_actions_are_seeded_and_on_screen():
    bench = load_benchmark("step_overhead")
    a = bench.random_actions(20, (320, 240), seed=3)
    assert a == bench.random_actions(20, (320, 240), seed=3)
    assert [type(x) for x in a[:2]] == [Move, Click]
    assert all(0 <= x.x < 320 and 0 <= x.y < 240 for x in a)


@pytest.mark.integration
def test_benchmark_runs_and_writes_json(tmp_path, capsys):
    require_x_tools("Xvfb")
    bench = load_benchmark("step_overhead")
    out = tmp_path / "bench.json"
    assert bench.main(["--steps", "3", "--warmup", "1", "--size", "320x240", "--no-browser", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    rows = {r["name"].strip(): r for r in result["rows"]}
    for name in ("desktop capture (mss → RGB)", "desktop step (DesktopEnv on Xvfb)",
                 "osworld step (subprocess per action + PNG grab)"):
        assert rows[name]["n"] == 3 and rows[name]["median_ms"] > 0
    assert rows["browser step (BrowserEnv)"]["n"] == 0 and "skipped" in rows["browser step (BrowserEnv)"]["note"]
    ratio = result["ratios"]["osworld / desktop (median step)"]
    assert ratio is not None and math.isfinite(ratio)
    assert result["ratios"]["osworld / browser (median step)"] is None
    assert "osworld / desktop" in capsys.readouterr().out

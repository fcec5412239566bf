"""evaluate(): postconfig, getters and metrics on a real LocalController; conj, infeasible, thresholds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from envs.actions import Done, Fail
from envs.tasks.evaluate import DEFAULT_SUCCESS_THRESHOLD, evaluate, missing_pieces
from envs.tasks.fetch import FetchPolicy
from envs.tasks.getters import EvalContext, run_getter
from envs.tasks.local_controller import LocalController
from envs.tasks.model import GetterSpec, parse_evaluator


@pytest.fixture()
def ctx(tmp_path: Path) -> Iterator[EvalContext]:
    with LocalController(display="") as c:
        yield EvalContext(c, tmp_path / "cache")


def echo(text: str) -> dict:
    return {"type": "vm_command_line", "command": ["printf", text]}


def rule(**rules: object) -> dict:
    return {"type": "rule", "rules": rules}


def test_single_metric_with_postconfig_and_cache_file(tmp_path: Path, ctx: EvalContext) -> None:
    target = tmp_path / "listing"
    target.mkdir()
    (target / "COMPANY.msf").write_text("")
    ev = parse_evaluator({
        "postconfig": [{"type": "execute", "parameters": {"command": ["ls", "-R", str(target)], "stdout": "ls.out"}},
                       {"type": "sleep", "parameters": {"seconds": 0.5}}],
        "func": "check_list", "result": {"type": "cache_file", "path": "ls.out"},
        "expected": rule(expect=[r"\bCOMPANY\.msf\b"])})
    res = evaluate(ev, ctx, Done(), sleep_scale=0.0)
    assert (res.status, res.score, res.success, res.feasible) == ("scored", 1.0, True, True)
    assert res.records[0].func == "check_list" and res.to_json()["records"][0]["score"] == 1.0


def test_vm_file_missing_scores_zero_and_multi_gives(tmp_path: Path, ctx: EvalContext) -> None:
    ev = parse_evaluator({"func": "compare_text_file",
                          "result": {"type": "vm_file", "path": str(tmp_path / "nope.txt"), "dest": "r.txt"},
                          "expected": {"type": "vm_file", "path": str(tmp_path / "nope.txt"), "dest": "g.txt"}})
    assert evaluate(ev, ctx, None).score == 0.0
    for name in ("a", "b", "c"):
        (tmp_path / name).write_text(name)
    spec = GetterSpec("vm_file", {"multi": True, "path": [str(tmp_path / n) for n in "abc"], "dest": ["1", "2", "3"],
                                  "gives": [0, 2]})
    got = run_getter(ctx, spec)
    assert [Path(p).read_text() for p in got] == ["a", "c"]


def test_conj_and_averages_or_takes_max(ctx: EvalContext) -> None:
    def ev(conj: str, texts: list[str]) -> object:
        return parse_evaluator({"func": ["fuzzy_match", "exact_match"], "conj": conj,
                                "result": [echo(texts[0]), echo(texts[1])],
                                "expected": [rule(expected="kitten"), rule(expected="yes")]})
    half = evaluate(ev("and", ["sitting", "yes"]), ctx, None)
    assert half.score == pytest.approx((8 / 13 + 1.0) / 2) and not half.success and half.status == "scored"
    assert evaluate(ev("and", ["kitten", "no"]), ctx, None).score == 0.0  # one zero -> 0 (OSWorld short-circuit)
    assert evaluate(ev("or", ["sitting", "no"]), ctx, None).score == pytest.approx(8 / 13)
    assert evaluate(ev("or", ["sitting", "yes"]), ctx, None).score == 1.0
    assert evaluate(ev("and", ["sitting", "yes"]), ctx, None, threshold=0.8).success  # configurable threshold
    assert DEFAULT_SUCCESS_THRESHOLD == pytest.approx(1.0)


def test_infeasible_scores_only_on_fail(ctx: EvalContext) -> None:
    ev = parse_evaluator({"func": "infeasible"})
    assert evaluate(ev, ctx, Fail("cannot be done")).score == 1.0
    res = evaluate(ev, ctx, Done())
    assert res.score == 0.0 and not res.feasible
    assert evaluate(ev, ctx, None).score == 0.0
    feasible = parse_evaluator({"func": "exact_match", "result": echo("x"), "expected": rule(expected="x")})
    assert evaluate(feasible, ctx, Done()).score == 1.0
    assert evaluate(feasible, ctx, Fail("gave up")).score == 0.0  # giving up on a feasible task fails it


def test_statuses_for_unsupported_postconfig_and_eval_errors(tmp_path: Path, ctx: EvalContext) -> None:
    unsupported = parse_evaluator({"func": "compare_table", "result": {"type": "vm_file", "path": "/x", "dest": "x"},
                                   "expected": {"type": "active_tab_info"}})
    assert missing_pieces(unsupported) == ["metric:compare_table", "getter:active_tab_info"]
    assert evaluate(unsupported, ctx, Done()).status == "unsupported"
    broken_post = parse_evaluator({"postconfig": [{"type": "execute", "parameters": {"command": ["sleep", "5"], "timeout": 0.5}}],
                                   "func": "exact_match", "result": echo("x"), "expected": rule(expected="x")})
    res = evaluate(broken_post, ctx, Done())
    assert res.status == "postconfig_error" and not res.success and "did not finish" in (res.error or "")
    remote = parse_evaluator({"func": "compare_text_file", "result": echo("x"),
                              "expected": {"type": "cloud_file", "path": "https://huggingface.co/x/gold.txt", "dest": "g.txt"}})
    res = evaluate(remote, ctx, Done())
    assert res.status == "eval_error" and "mirror" in (res.error or "")


def test_cloud_file_from_mirror(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "huggingface.co/x").mkdir(parents=True)
    (mirror / "huggingface.co/x/gold.txt").write_text("line one\nline two\n")
    (tmp_path / "res.txt").write_text("line one\nline two\n")
    ev = parse_evaluator({"func": "compare_text_file",
                          "result": {"type": "vm_file", "path": str(tmp_path / "res.txt"), "dest": "res.txt"},
                          "expected": {"type": "cloud_file", "path": "https://huggingface.co/x/gold.txt", "dest": "gold.txt"}})
    with LocalController(display="") as c:
        res = evaluate(ev, EvalContext(c, tmp_path / "cache", FetchPolicy(mirror)), Done())
    assert res.success and (tmp_path / "cache" / "gold.txt").is_file()


def test_other_getters(tmp_path: Path, ctx: EvalContext) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "a.jpg").write_text("")
    tree = run_getter(ctx, GetterSpec("list_directory", {"path": str(tmp_path / "d")}))
    assert tree == {"type": "directory", "name": "d", "children": [
        {"type": "file", "name": "a.jpg"}, {"type": "directory", "name": "sub", "children": []}]}
    err = run_getter(ctx, GetterSpec("vm_command_error", {"command": "echo oops >&2", "shell": True}))
    assert err == "oops\n"
    with pytest.raises(ValueError, match="leaves the cache directory"):
        run_getter(ctx, GetterSpec("cache_file", {"path": "../../etc/passwd"}))

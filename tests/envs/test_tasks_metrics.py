"""Metrics follow OSWorld's semantics (desktop_env/evaluators/metrics), one behaviour per test."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.tasks.errors import UnknownEvaluatorPieceError
from envs.tasks import metrics as m

NO: MappingProxyType = MappingProxyType({})


def _file(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


def _lcs(a: str, b: str) -> int:
    dp = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            dp[i + 1][j + 1] = dp[i][j] + 1 if x == y else max(dp[i][j + 1], dp[i + 1][j])
    return dp[-1][-1]


def test_indel_ratio_known_values() -> None:
    assert m.indel_ratio("kitten", "sitting") == pytest.approx(2 * 4 / 13)  # rapidfuzz: 61.538...
    assert m.indel_ratio("", "") == 1.0 and m.indel_ratio("abc", "") == 0.0 and m.indel_ratio("abc", "abc") == 1.0


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="abcde", max_size=30), st.text(alphabet="abcde", max_size=30))
def test_indel_ratio_equals_lcs_definition(a: str, b: str) -> None:
    want = 1.0 if not a and not b else 2 * _lcs(a, b) / (len(a) + len(b))
    assert m.indel_ratio(a, b) == pytest.approx(want)


def test_exact_match_and_list_membership() -> None:
    assert m.exact_match("uint32 0\n", {"expected": "uint32 0\n"}, NO) == 1.0
    assert m.exact_match("uint32 0", {"expected": "uint32 0\n"}, NO) == 0.0  # no normalisation
    assert m.match_in_list("Bing", {"expected": ["Microsoft Bing", "Bing"]}, NO) == 1.0
    assert m.match_in_list("Google", {"expected": ["Bing"]}, NO) == 0.0
    assert m.is_in_list(["/a", "/home/user/Desktop/helloExtension"], {"expected": "/home/user/Desktop/helloExtension"}, NO) == 1.0
    assert m.is_in_list(None, {"expected": "x"}, NO) == 0.0


def test_check_include_exclude() -> None:
    rules = {"include": ["no libreoffice is running", "killed"], "exclude": ["still running"]}
    assert m.check_include_exclude("no libreoffice is running\nkilled from terminal\n", rules, NO) == 1.0
    assert m.check_include_exclude("killed; libreoffice is still running", rules, NO) == 0.0
    assert m.check_include_exclude(None, rules, NO) == 0.0
    assert m.check_include_exclude("anything", {"include": ["54"]}, NO) == 0.0


def test_literal_match_str_and_list() -> None:
    assert m.literal_match("Hello", "hello", {"ignore_case": True}) == 1.0
    assert m.literal_match("Hello", "hello", NO) == 0.0
    assert m.literal_match(12, "12", NO) == 1.0  # compares str() forms
    assert m.literal_match(["A", 1], ["a", "1"], {"type": "list", "ignore_case": True}) == 1.0
    assert m.literal_match(["a"], ["a", "b"], {"type": "list"}) == 0.0
    with pytest.raises(ValueError):
        m.literal_match("a", "a", {"type": "dict"})


def test_fuzzy_match_is_a_partial_score() -> None:
    assert m.fuzzy_match("kitten", {"expected": "sitting"}, NO) == pytest.approx(8 / 13)
    assert m.fuzzy_match(None, {"expected": "x"}, NO) == 0.0


def test_check_direct_json_object_modes() -> None:
    rules = {"expected": {"q": "drip coffee maker", "n": 2}}
    assert m.check_direct_json_object({"q": "drip coffee maker", "n": 2, "extra": 1}, rules, NO) == 1.0
    assert m.check_direct_json_object("{'q': 'drip coffee maker', 'n': 2}", rules, NO) == 1.0  # single quotes
    assert m.check_direct_json_object({"q": "drip"}, rules, NO) == 0.0
    assert m.check_direct_json_object("not json", rules, NO) == 0.0
    inres = {"expected": {"q": "coffee", "tags": ["a", "b"]}, "expect_in_result": True}
    assert m.check_direct_json_object({"q": "drip coffee maker", "tags": ["b", "c"]}, inres, NO) == 1.0
    assert m.check_direct_json_object({"q": "tea", "tags": ["b"]}, inres, NO) == 0.0
    assert m.check_direct_json_object({"q": "x"}, {"expected": {"q": "__EVALUATION_FAILED__"}}, NO) == 0.0


def test_url_pattern_and_moved_files() -> None:
    assert m.is_expected_url_pattern_match({"url": "https://x.com/manchester/weather"}, {"expected": ["/manchester/"]}, NO) == 1.0
    assert m.is_expected_url_pattern_match("https://x.com/", {"expected": ["^chrome://settings"]}, NO) == 0.0
    tree = {"type": "directory", "name": "d", "children": [{"type": "file", "name": "a.jpg"}, {"type": "file", "name": "b.jpg"}]}
    assert m.check_moved_jpgs(tree, {"expected": ["b.jpg", "a.jpg"]}, NO) == 1.0
    assert m.check_moved_jpgs(tree, {"expected": ["a.jpg"]}, NO) == 0.0


def test_text_file_metrics(tmp_path: Path) -> None:
    a = _file(tmp_path, "a.txt", "Hello  World\n\tline two\n")
    b = _file(tmp_path, "b.txt", "hello world line two")
    assert m.compare_text_file(a, b, NO) == 0.0
    assert m.compare_text_file(a, b, {"ignore_blanks": True}) == 0.0  # case still differs
    assert m.compare_text_file(a, b, {"ignore_blanks": True, "ignore_case": True}) == 1.0
    assert m.compare_text_file(None, b, NO) == 0.0 and m.compare_text_file(str(tmp_path / "missing"), b, NO) == 0.0
    c = _file(tmp_path, "c.txt", "1\n2\n3\n4\n")
    d = _file(tmp_path, "d.txt", "1\n2\n3\n5\n")
    assert m.diff_text_file(c, d, NO) == pytest.approx(0.75)
    assert m.diff_text_file(c, c, NO) == 1.0


def test_check_list_regexes_per_line(tmp_path: Path) -> None:
    f = _file(tmp_path, "ls.txt", "COMPANY.msf\nCOMPANY\nUNIVERSITY.msf\n")
    assert m.check_list(f, {"expect": [r"\bCOMPANY\.msf\b", r"\bUNIVERSITY\.msf\b"]}, NO) == 1.0
    assert m.check_list(f, {"expect": [r"\bCOMPANY\.msf\b"], "unexpect": ["UNIVERSITY"]}, NO) == 0.0
    assert m.check_list(f, {"expect": ["Trash"]}, NO) == 0.0
    assert m.check_list(None, {"expect": []}, NO) == 0.0


def test_file_contains_and_line_number(tmp_path: Path) -> None:
    f = _file(tmp_path, "r.txt", "CPU %user %idle\n10:00:01 all 1\n10:00:02 all 2\n")
    assert m.file_contains(f, {"expected": ["CPU", "%idle"]}, NO) == 1.0
    assert m.file_contains(f, {"expected": ["%steal"]}, NO) == 0.0
    assert m.check_line_number(f, {"expected": "2"}, NO) == 1.0
    assert m.check_line_number(f, {"expected": "3"}, NO) == 0.0


def test_json_metrics(tmp_path: Path) -> None:
    f = _file(tmp_path, "s.json", json.dumps({"editor.wordWrapColumn": 50, "a": {"b": "smart mode"}}))
    assert m.check_json_settings(f, {"expected": {"editor.wordWrapColumn": 50}}, NO) == 1.0
    assert m.check_json_settings(f, {"expected": {"editor.wordWrapColumn": 40}}, NO) == 0.0
    assert m.check_json(f, {"expect": [{"key": ["a", "b"], "method": "re", "ref": r"\bsmart\b"}]}, NO) == 1.0
    assert m.check_json(f, {"expect": [{"key": ["a", "zz"], "method": "eq", "ref": 1}]}, NO) == 0.0
    assert m.check_json(f, {"unexpect": [{"key": ["editor.wordWrapColumn"], "method": "ge", "ref": 40}]}, NO) == 0.0
    assert m.check_json(f, {"expect": [{"key": ["editor.wordWrapColumn"], "method": "approx:0.5", "ref": 50.2}]}, NO) == 1.0
    y = _file(tmp_path, "c.yml", "name: Test Account\nauthor:\n  email: Test@gmail.com\n")
    assert m.check_json(y, {"expect": [{"key": ["author", "email"], "method": "eq", "ref": "Test@gmail.com"}]}, {"is_yaml": True}) == 1.0
    assert m.check_json(_file(tmp_path, "bad.json", "{"), {"expect": []}, NO) == 0.0
    with pytest.raises(ValueError, match="unknown rule method"):
        m.check_json(f, {"expect": [{"key": ["a"], "method": "startswith", "ref": "x"}]}, NO)


def test_compare_config(tmp_path: Path) -> None:
    f = _file(tmp_path, "p.txt", "project")
    assert m.compare_config(f, {"expected": "project"}, NO) == 1.0
    s = _file(tmp_path, "settings.json", json.dumps({"workbench.colorTheme": "Visual Studio Dark", "x": 1}))
    rules = {"expected": '{"workbench.colorTheme": "Visual Studio Dark"}\n'}
    assert m.compare_config(s, rules, NO) == 0.0
    assert m.compare_config(s, rules, {"containment_ok": True}) == 1.0


def test_check_csv_and_sqlite(tmp_path: Path) -> None:
    f = _file(tmp_path, "acc.csv", "url,user\nimap://a,alice\nimap://b,bob\n")
    assert m.check_csv(f, {"expect": [{"user": "bob"}], "unexpect": [{"url": "imap://c"}]}, NO) == 1.0
    assert m.check_csv(f, {"unexpect": [{"url": "imap://a", "user": "alice"}]}, NO) == 0.0
    db = tmp_path / "m.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (v INTEGER)")
    conn.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
    conn.commit()
    conn.close()
    assert m.run_sqlite3(str(db), {"sql": "SELECT COUNT(*) = 2 FROM t"}, NO) == 1.0
    assert m.run_sqlite3(str(db), {"sql": "SELECT COUNT(*) = 3 FROM t"}, NO) == 0.0
    assert m.run_sqlite3(None, {"sql": "SELECT 1"}, NO) == 0.0


def test_compare_python_pure_text(tmp_path: Path) -> None:
    a = _file(tmp_path, "a.py", "#!/usr/bin/env python\n\ndef f():\n\treturn 1   \n")
    b = _file(tmp_path, "b.py", "def f():\n    return 1\n")
    assert m.compare_python_pure_text(a, b, NO) == 1.0
    assert m.compare_python_pure_text(a, _file(tmp_path, "c.py", "```python\ndef f():\n    return 1\n"), NO) == 0.0


def test_registry_is_explicit() -> None:
    assert m.get_metric("exact_match").fn is m.exact_match
    with pytest.raises(UnknownEvaluatorPieceError, match="compare_table"):
        m.get_metric("compare_table")

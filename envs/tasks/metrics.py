"""Evaluator metrics: compare a getter's result with the expected value, return a float score.

``METRICS`` is the explicit registry (name -> ``Metric``); every function has the signature
``fn(result, expected, options) -> float`` where ``expected`` is ``None`` for metrics that take
no expected value. Semantics follow OSWorld's ``desktop_env/evaluators/metrics`` (general.py,
docs.py, vscode.py, chrome.py, basic_os.py); assumptions are noted per function. A ``None``
result (e.g. the file the agent should have written is missing) scores 0.

Fuzzy scores use our own exact implementation of rapidfuzz's ``fuzz.ratio`` (normalised Indel
similarity, computed with a bit-parallel LCS) so no extra dependency is needed.
``diff_text_file`` uses ``difflib.SequenceMatcher`` on lines, like OSWorld.
"""

from __future__ import annotations

import csv
import difflib
import json
import operator
import re
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envs.tasks.errors import UnknownEvaluatorPieceError

MetricFn = Callable[[Any, Any, Mapping[str, Any]], float]


@dataclass(frozen=True)
class Metric:
    fn: MetricFn
    needs_expected: bool = True


# -- helpers -------------------------------------------------------------------------------
def indel_ratio(a: str, b: str) -> float:
    """rapidfuzz ``fuzz.ratio(a, b) / 100``: ``2 * LCS(a, b) / (len(a) + len(b))`` (1.0 for two empty strings)."""
    if not a and not b:
        return 1.0
    masks: dict[str, int] = {}
    for i, ch in enumerate(a):
        masks[ch] = masks.get(ch, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for ch in b:  # Hyyrö's bit-parallel LCS: zero bits of v count the LCS length
        u = v & masks.get(ch, 0)
        v = ((v + u) | (v - u)) & full
    lcs = len(a) - bin(v).count("1")
    return 2.0 * lcs / (len(a) + len(b))


def _read_text(path: Any) -> str | None:
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, IsADirectoryError):
        return None


_COMPARE = {"eq": operator.eq, "ne": operator.ne, "le": operator.le, "lt": operator.lt, "ge": operator.ge, "gt": operator.gt}
_RE_FLAGS = {"I": re.I, "IGNORECASE": re.I, "M": re.M, "MULTILINE": re.M, "S": re.S, "DOTALL": re.S, "X": re.X,
             "VERBOSE": re.X, "A": re.A, "ASCII": re.A}


def match_value_to_rule(value: Any, rule: Mapping[str, Any]) -> bool:
    """OSWorld's ``_match_value_to_rule``: ``method`` is eq/ne/le/lt/ge/gt, ``re[.FLAG...]`` or ``approx:TOL``."""
    method, ref = str(rule["method"]), rule["ref"]
    if method in _COMPARE:
        try:
            return bool(_COMPARE[method](value, ref))
        except TypeError:
            return False
    if method == "re" or method.startswith("re."):
        flags = 0
        for name in method.split(".")[1:]:
            if name not in _RE_FLAGS:
                raise ValueError(f"unknown regex flag {name!r} in method {method!r}; use one of {sorted(_RE_FLAGS)}")
            flags |= _RE_FLAGS[name]
        return re.search(str(ref), "" if value is None else str(value), flags) is not None
    if method.startswith("approx:"):
        try:
            return abs(float(value) - float(ref)) <= float(method.split(":", 1)[1])
        except (TypeError, ValueError):
            return False
    raise ValueError(f"unknown rule method {method!r}; use eq/ne/le/lt/ge/gt, re[.FLAG] or approx:TOL")


# -- value metrics ---------------------------------------------------------------------------
def exact_match(result: Any, rules: Any, options: Mapping[str, Any]) -> float:
    """1 if ``result == rules["expected"]`` (no normalisation, like OSWorld)."""
    return float(result == rules["expected"])


def match_in_list(result: Any, rules: Any, options: Mapping[str, Any]) -> float:
    """1 if ``result`` is one of ``rules["expected"]``."""
    return float(result in rules["expected"])


def is_in_list(result: Any, rules: Any, options: Mapping[str, Any]) -> float:
    """1 if ``rules["expected"]`` is an element of (or substring of) ``result``."""
    if result is None:
        return 0.0
    return float(rules["expected"] in result)


def check_include_exclude(result: Any, rules: Any, options: Mapping[str, Any]) -> float:
    """1 if every ``include`` string is in ``result`` and no ``exclude`` string is."""
    if result is None:
        return 0.0
    include, exclude = rules.get("include", []), rules.get("exclude", [])
    return float(all(s in result for s in include) and all(s not in result for s in exclude))


def literal_match(result: Any, expected: Any, options: Mapping[str, Any]) -> float:
    """``type`` "str": compare ``str()`` forms; "list": same length and element-wise ``str()`` equal.

    ``ignore_case`` lower-cases both sides first.
    """
    kind, fold = options.get("type", "str"), bool(options.get("ignore_case", False))
    norm = (lambda s: str(s).lower()) if fold else str
    if kind == "str":
        return float(norm(result) == norm(expected))
    if kind == "list":
        if not isinstance(result, (list, tuple)) or not isinstance(expected, (list, tuple)) or len(result) != len(expected):
            return 0.0
        return float([norm(r) for r in result] == [norm(e) for e in expected])
    raise ValueError(f"literal_match option type must be 'str' or 'list', got {kind!r}")


def fuzzy_match(result: Any, rules: Any, options: Mapping[str, Any]) -> float:
    """Indel similarity of ``result`` and ``rules["expected"]`` in [0, 1] (rapidfuzz ``fuzz.ratio``/100)."""
    if result is None:
        return 0.0
    return indel_ratio(str(result), str(rules["expected"]))


def check_direct_json_object(result: Any, rules: Any, options: Mapping[str, Any]) -> float:
    """Compare a JSON object (or its text, single quotes allowed) key by key with ``rules["expected"]``.

    Default: every expected key must equal the result's value. ``expect_in_result``: a list of
    expected values means "the result (list or string) contains one of them", a string means
    "is a substring of the result's value".
    """
    if isinstance(result, str):
        try:
            result = json.loads(result.strip().replace("'", '"'))
        except json.JSONDecodeError:
            return 0.0
    if not isinstance(result, Mapping):
        return 0.0
    expected = rules["expected"]
    if any(v == "__EVALUATION_FAILED__" for v in expected.values()):
        return 0.0
    if not rules.get("expect_in_result", False):
        return float(all(result.get(k) == v for k, v in expected.items()))
    for key, want in expected.items():
        got = result.get(key)
        if isinstance(want, list):
            if not any((isinstance(got, list) and w in got) or (isinstance(got, str) and w == got) for w in want):
                return 0.0
        elif isinstance(want, str):
            if not isinstance(got, str) or want not in got:
                return 0.0
        else:
            return 0.0
    return 1.0


def is_expected_url_pattern_match(result: Any, rules: Any, options: Mapping[str, Any]) -> float:
    """1 if every regex in ``rules["expected"]`` is found in the URL (``result`` or ``result["url"]``)."""
    if not result:
        return 0.0
    url = result["url"] if isinstance(result, Mapping) else str(result)
    return float(all(re.search(p, url) for p in rules["expected"]))


def check_moved_jpgs(result: Any, rules: Any, options: Mapping[str, Any]) -> float:
    """1 if the directory tree's direct children are exactly the expected file names."""
    if not isinstance(result, Mapping):
        return 0.0
    names = [c["name"] for c in result.get("children", [])]
    expected = rules["expected"]
    return float(len(names) == len(expected) and set(names) == set(expected))


# -- file metrics (result is a local path from vm_file / cache_file / cloud_file) -------------
def compare_text_file(result: Any, expected: Any, options: Mapping[str, Any]) -> float:
    """1 if the two text files are equal; ``ignore_blanks`` collapses whitespace runs, ``ignore_case`` folds case."""
    actual, gold = _read_text(result), _read_text(expected)
    if actual is None or gold is None:
        return 0.0
    if options.get("ignore_blanks", False):
        actual, gold = (re.sub(r"\s+", " ", re.sub(r"[\t\n]", " ", t).strip()) for t in (actual, gold))
    if options.get("ignore_case", False):
        actual, gold = actual.lower(), gold.lower()
    return float(actual == gold)


def diff_text_file(result: Any, expected: Any, options: Mapping[str, Any]) -> float:
    """``difflib.SequenceMatcher`` ratio of the two files' lines, in [0, 1]."""
    actual, gold = _read_text(result), _read_text(expected)
    if actual is None or gold is None:
        return 0.0
    return difflib.SequenceMatcher(a=actual.splitlines(), b=gold.splitlines()).ratio()


def check_list(result: Any, rules: Any, options: Mapping[str, Any]) -> float:
    """Each ``expect`` regex matches some line of the file and no ``unexpect`` regex matches any line."""
    text = _read_text(result)
    if text is None:
        return 0.0
    expect = [re.compile(p) for p in rules.get("expect", [])]
    unexpect = [re.compile(p) for p in rules.get("unexpect", [])]
    lines = text.splitlines(keepends=True)
    found = all(any(p.search(line) for line in lines) for p in expect)
    clean = not any(p.search(line) for p in unexpect for line in lines)
    return float(found and clean)


def file_contains(result: Any, rules: Any, options: Mapping[str, Any]) -> float:
    """1 if every string of ``rules["expected"]`` occurs in the file."""
    text = _read_text(result)
    return 0.0 if text is None else float(all(s in text for s in rules["expected"]))


def check_line_number(result: Any, rules: Any, options: Mapping[str, Any]) -> float:
    """1 if the number of lines holding an ``HH:MM:SS`` time equals ``int(rules["expected"])``."""
    text = _read_text(result)
    if text is None:
        return 0.0
    time_re = re.compile(r"([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)")
    return float(sum(1 for line in text.splitlines() if time_re.search(line)) == int(rules["expected"]))


def _load_structured(path: Any, is_yaml: bool) -> Any:
    """Parsed JSON/YAML of a file, or None when it is missing or broken (the agent's file scores 0)."""
    text = _read_text(path)
    if text is None:
        return None
    if is_yaml:
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def _lookup(data: Any, keys: list[Any]) -> tuple[bool, Any]:
    for k in keys:
        try:
            data = data[k]
        except (KeyError, IndexError, TypeError):
            return False, None
    return True, data


def check_json(result: Any, rules: Any, options: Mapping[str, Any]) -> float:
    """Rules ``expect``/``unexpect``: lists of ``{key: [path...], method, ref}`` checked on a JSON (or YAML) file.

    A missing key fails an ``expect`` rule and is ``None`` for an ``unexpect`` rule.
    """
    data = _load_structured(result, bool(options.get("is_yaml", False)))
    if data is None:
        return 0.0
    for rule in rules.get("expect", []):
        ok, value = _lookup(data, rule["key"])
        if not ok or not match_value_to_rule(value, rule):
            return 0.0
    for rule in rules.get("unexpect", []):
        _, value = _lookup(data, rule["key"])
        if match_value_to_rule(value, rule):
            return 0.0
    return 1.0


def check_json_settings(result: Any, rules: Any, options: Mapping[str, Any]) -> float:
    """1 if every key of ``rules["expected"]`` is in the JSON file with an equal value."""
    data = _load_structured(result, False)
    if not isinstance(data, Mapping):
        return 0.0
    return float(all(k in data and data[k] == v for k, v in rules["expected"].items()))


def _is_subset(expected: Any, actual: Any) -> bool:
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(k in actual and _is_subset(v, actual[k]) for k, v in expected.items())
    return expected == actual


def compare_config(result: Any, rules: Any, options: Mapping[str, Any]) -> float:
    """1 if the file's text equals ``rules["expected"]``.

    With ``containment_ok`` (default False, the original OSWorld behaviour): the expected JSON
    may be a subset of the file's JSON, or else the expected text a substring of the file.
    """
    text, want = _read_text(result), rules.get("expected")
    if text is None or not want:
        return 0.0
    if text == want:
        return 1.0
    if options.get("containment_ok", False):
        try:
            if _is_subset(json.loads(want), json.loads(text)):
                return 1.0
        except json.JSONDecodeError:
            pass
        return float(want.strip() in text)
    return 0.0


def check_csv(result: Any, rules: Any, options: Mapping[str, Any]) -> float:
    """Each ``expect`` record (dict of column -> value) matches some row; no ``unexpect`` record matches any."""
    text = _read_text(result)
    if text is None:
        return 0.0
    rows = list(csv.DictReader(text.splitlines()))

    def match(pattern: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
        return all(k in row and row[k] == v for k, v in pattern.items())

    found = all(any(match(p, r) for r in rows) for p in rules.get("expect", []))
    clean = not any(match(p, r) for p in rules.get("unexpect", []) for r in rows)
    return float(found and clean)


def run_sqlite3(result: Any, rules: Any, options: Mapping[str, Any]) -> float:
    """The first column of the first row of ``rules["sql"]`` run (read-only) on the database file."""
    if not result or not Path(result).is_file():
        return 0.0
    conn = sqlite3.connect(f"file:{Path(result).resolve()}?mode=ro", uri=True)
    try:
        row = conn.execute(rules["sql"]).fetchone()
    finally:
        conn.close()
    return float((row[0] if row else 0) or 0)


def compare_python_pure_text(result: Any, expected: Any, options: Mapping[str, Any]) -> float:
    """1 if two Python files are equal after dropping a leading shebang/coding line, blank lines and trailing blanks."""
    texts = [_read_text(result), _read_text(expected)]
    if texts[0] is None or texts[1] is None:
        return 0.0

    def norm(text: str) -> str:
        lines = text.splitlines()
        i = 0
        while i < min(3, len(lines)) and re.match(r"\s*(#!|# -\*- coding:|# coding[:=])", lines[i]):
            i += 1
        return "\n".join(line.expandtabs(4).rstrip() for line in lines[i:] if line.strip())

    return float(norm(texts[0]) == norm(texts[1]))


METRICS: dict[str, Metric] = {
    "exact_match": Metric(exact_match),
    "match_in_list": Metric(match_in_list),
    "is_in_list": Metric(is_in_list),
    "check_include_exclude": Metric(check_include_exclude),
    "literal_match": Metric(literal_match),
    "fuzzy_match": Metric(fuzzy_match),
    "check_direct_json_object": Metric(check_direct_json_object),
    "is_expected_url_pattern_match": Metric(is_expected_url_pattern_match),
    "check_moved_jpgs": Metric(check_moved_jpgs),
    "compare_text_file": Metric(compare_text_file),
    "diff_text_file": Metric(diff_text_file),
    "check_list": Metric(check_list),
    "file_contains": Metric(file_contains),
    "check_line_number": Metric(check_line_number),
    "check_json": Metric(check_json),
    "check_json_settings": Metric(check_json_settings),
    "compare_config": Metric(compare_config),
    "check_csv": Metric(check_csv),
    "run_sqlite3": Metric(run_sqlite3),
    "compare_python_pure_text": Metric(compare_python_pure_text),
}


def get_metric(name: str) -> Metric:
    """The registered metric ``name``; raises ``UnknownEvaluatorPieceError`` otherwise."""
    try:
        return METRICS[name]
    except KeyError:
        raise UnknownEvaluatorPieceError("metric", name, list(METRICS)) from None

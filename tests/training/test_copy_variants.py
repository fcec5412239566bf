"""Copy variants: quoted phrases found, replaced with same-shaped random ones, case transforms kept."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("torch")

from training.data.copy_variants import quoted_phrases, random_phrase, rewrite_typed  # noqa: E402


def test_quoted_phrases_in_order_without_repeats() -> None:
    assert quoted_phrases('Enter the username "ann" and the password "x9Q" (not "ann")') == ["ann", "x9Q"]
    assert quoted_phrases("Select Darya from the list") == []


def test_random_phrases_keep_the_shape() -> None:
    rng = random.Random(0)
    for like, check in (("Sergio", lambda p: p[0].isupper() and p[1:].islower() and p.isalpha()),
                        ("nathalie", lambda p: p.isalpha() and p.islower()),
                        ("ONE", lambda p: p.isalpha() and p.isupper()),
                        ("x9Q", lambda p: p.isalnum())):
        for _ in range(50):
            phrase = random_phrase(like, rng)
            assert check(phrase) and 2 <= len(phrase) <= 12, (like, phrase)


def test_rewrite_keeps_the_case_transform_the_task_asked_for() -> None:
    assert rewrite_typed("Sergio", {"Sergio": "Abc"}) == "Abc"
    assert rewrite_typed("SERGIO", {"Sergio": "Abc"}) == "ABC"
    assert rewrite_typed("sergio\n", {"Sergio": "Abc"}) == "abc\n"
    assert rewrite_typed("unrelated", {"Sergio": "Abc"}) is None


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abcdefXYZ019", min_size=1, max_size=10), st.integers(0, 10**6))
def test_a_typed_phrase_is_always_replaced_by_its_substitute(phrase: str, seed: int) -> None:
    new = random_phrase(phrase, random.Random(seed))
    assert rewrite_typed(phrase, {phrase: new}) == new

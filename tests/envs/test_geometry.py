"""Coordinate maps between model spaces and screen pixels."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.geometry import box_center, from_screen, point_in_box, round_half_up, smart_resize, to_screen

sizes = st.tuples(st.integers(1, 4000), st.integers(1, 4000))


def test_known_values() -> None:
    assert to_screen(500, 500, space="norm1000", screen_size=(1920, 1080)) == (960, 540)
    assert to_screen(1000, 1000, space="norm1000", screen_size=(1920, 1080)) == (1919, 1079)
    assert to_screen(0.25, 0.5, space="unit", screen_size=(1280, 800)) == (320, 400)
    assert to_screen(364, 658, space="resized", screen_size=(1920, 1080), resized_size=(1316, 728)) == (531, 976)
    assert to_screen(10.4, 10.6, space="screen", screen_size=(100, 100)) == (10, 11)
    assert from_screen(960, 540, space="norm1000", screen_size=(1920, 1080)) == (500, 500)


def test_errors_are_explicit() -> None:
    with pytest.raises(ValueError, match="resized_size"):
        to_screen(1, 1, space="resized", screen_size=(10, 10))
    with pytest.raises(ValueError, match="unknown coordinate space"):
        to_screen(1, 1, space="inches", screen_size=(10, 10))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        to_screen(float("nan"), 1, space="unit", screen_size=(10, 10))
    with pytest.raises(ValueError, match="positive"):
        to_screen(1, 1, space="unit", screen_size=(0, 10))


@given(sizes, st.data())
@settings(max_examples=300, deadline=None)
def test_unit_and_resized_round_trip_exactly(size, data) -> None:
    w, h = size
    x = data.draw(st.integers(0, w - 1))
    y = data.draw(st.integers(0, h - 1))
    ux, uy = from_screen(x, y, space="unit", screen_size=size)
    assert to_screen(ux, uy, space="unit", screen_size=size) == (x, y)
    assert to_screen(*from_screen(x, y, space="screen", screen_size=size), space="screen", screen_size=size) == (x, y)
    # A resized space at least as fine as the screen round-trips exactly.
    big = (w * 2, h * 3)
    rx, ry = from_screen(x, y, space="resized", screen_size=size, resized_size=big)
    assert to_screen(rx, ry, space="resized", screen_size=size, resized_size=big) == (x, y)


@given(sizes, st.data())
@settings(max_examples=300, deadline=None)
def test_norm1000_round_trip_within_one_model_unit(size, data) -> None:
    w, h = size
    x = data.draw(st.integers(0, w - 1))
    y = data.draw(st.integers(0, h - 1))
    nx, ny = from_screen(x, y, space="norm1000", screen_size=size)
    sx, sy = to_screen(nx, ny, space="norm1000", screen_size=size)
    assert abs(sx - x) <= math.ceil(w / 1000 / 2) and abs(sy - y) <= math.ceil(h / 1000 / 2)


@given(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6), sizes)
@settings(max_examples=300, deadline=None)
def test_clamped_results_are_always_on_screen(x: float, y: float, size) -> None:
    sx, sy = to_screen(x, y, space="norm1000", screen_size=size)
    assert 0 <= sx < size[0] and 0 <= sy < size[1]


@given(st.integers(1, 8000), st.integers(1, 8000))
@settings(max_examples=300, deadline=None)
def test_smart_resize_invariants(h: int, w: int) -> None:
    if max(h, w) / min(h, w) > 200:
        with pytest.raises(ValueError):
            smart_resize(h, w)
        return
    rh, rw = smart_resize(h, w)
    assert rh % 28 == 0 and rw % 28 == 0
    assert rh * rw <= 16384 * 28 * 28 or min(rh, rw) == 28


def test_smart_resize_matches_reference_values() -> None:
    assert smart_resize(1080, 1920) == (1092, 1932)
    assert smart_resize(800, 1280) == (812, 1288)
    assert smart_resize(210, 160) == (336, 252)  # scaled up to min_pixels
    assert smart_resize(1080, 1920, max_pixels=1280 * 28 * 28) == (728, 1316)


@given(st.integers(1, 6000), st.integers(1, 6000))
@settings(max_examples=300, deadline=None)
def test_smart_resize_equals_the_ui_tars_package(h: int, w: int) -> None:
    ref = pytest.importorskip("ui_tars.action_parser")
    try:
        expected = ref.smart_resize(h, w)
    except ValueError:
        return
    assert smart_resize(h, w) == expected


def test_helpers() -> None:
    assert round_half_up(2.5) == 3 and round_half_up(-0.5) == 0
    assert box_center(0, 0, 10, 20) == (5, 10)
    assert point_in_box(5, 5, (10, 10, 0, 0)) and not point_in_box(11, 5, (0, 0, 10, 10))

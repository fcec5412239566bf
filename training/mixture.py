"""A deterministic, resumable mixture of sample sources.

Sample number k of the run comes from the source chosen by ``random.Random(seed, k)`` under
the mixture weights at the current step, so the order depends only on (seed, k, weights) —
not on timing, ranks or restarts. Each source is a *factory* returning a fresh iterable; a
finite source restarts (next epoch) when exhausted. The state is the number of samples drawn
and, per source, (epoch, position); ``load_state_dict`` rebuilds the iterators and skips to
the saved positions, which is exact for deterministic sources (all of ``training.data``'s).

What this module does not do: tokenisation or collation (``training.data``).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

Sample = dict[str, Any]
SourceFactory = Callable[[], Iterable[Sample]]


@dataclass(frozen=True)
class DataMix:
    """Mixture weights over named sources, optionally ramped over the run.

    Sources in ``ramped`` start at weight 0 until progress ``ramp_start`` and reach their
    weight at ``ramp_end`` (linear); the others keep their weight throughout. Kimi-VL's joint
    pre-training ("text first, multimodal share ramped up") is
    ``DataMix((("text", 1.0), ("synthetic-caption", 0.5)), ramped=("synthetic-caption",), ...)``.
    """

    weights: tuple[tuple[str, float], ...]
    ramped: tuple[str, ...] = ()
    ramp_start: float = 0.0
    ramp_end: float = 0.0

    def __post_init__(self) -> None:
        names = [n for n, _ in self.weights]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"DataMix needs distinct source names, got {names}")
        if any(w < 0 for _, w in self.weights):
            raise ValueError("DataMix weights must be >= 0")
        if not set(self.ramped) <= set(names):
            raise ValueError(f"DataMix.ramped {self.ramped} must name sources of {names}")
        if not 0 <= self.ramp_start <= self.ramp_end <= 1:
            raise ValueError("DataMix needs 0 <= ramp_start <= ramp_end <= 1")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.weights)

    def at(self, progress: float) -> dict[str, float]:
        """Weights in force at ``progress`` ∈ [0, 1] of the run."""
        if self.ramp_end > self.ramp_start:
            ramp = min(1.0, max(0.0, (progress - self.ramp_start)
                                / (self.ramp_end - self.ramp_start)))
        else:
            ramp = 1.0 if progress >= self.ramp_start else 0.0
        return {n: w * ramp if n in self.ramped else w for n, w in self.weights}

    def restricted(self, names: Iterable[str]) -> DataMix:
        """This mix over ``names`` only; names it does not list get weight 1."""
        table = dict(self.weights)
        chosen = tuple((n, table.get(n, 1.0)) for n in names)
        ramped = tuple(n for n in self.ramped if n in dict(chosen))
        if all(w == 0 or n in ramped for n, w in chosen):
            ramped = ()  # nothing would be drawn before the ramp: drop it
        return DataMix(chosen, ramped, self.ramp_start, self.ramp_end)


class DataExhaustedError(RuntimeError):
    """A source yielded nothing at all: the data path or source arguments are wrong."""


class MixtureStream:
    """Draws samples from named sources with step-dependent weights; checkpointable."""

    def __init__(self, sources: Mapping[str, SourceFactory], seed: int = 0) -> None:
        if not sources:
            raise ValueError("MixtureStream needs at least one source; pass --data NAME[:ARG]")
        self.sources = dict(sources)
        self.seed = seed
        self.drawn = 0
        self.positions: dict[str, list[int]] = {name: [0, 0] for name in self.sources}
        self._iters: dict[str, Iterator[Sample]] = {}

    def _iterator(self, name: str) -> Iterator[Sample]:
        if name not in self._iters:
            epoch, pos = self.positions[name]
            it = iter(self.sources[name]())
            self._iters[name] = itertools.islice(it, pos, None)
        return self._iters[name]

    def _next_from(self, name: str) -> Sample:
        try:
            sample = next(self._iterator(name))
        except StopIteration:
            if self.positions[name][1] == 0:
                raise DataExhaustedError(f"data source {name!r} yielded no samples; check "
                                         "its argument (e.g. the trajectory run directory)"
                                         ) from None
            self.positions[name] = [self.positions[name][0] + 1, 0]  # next epoch
            self._iters.pop(name)
            return self._next_from(name)
        self.positions[name][1] += 1
        return sample

    def choose(self, index: int, weights: Mapping[str, float]) -> str:
        """Source of sample ``index`` under ``weights`` (names absent or 0 are never chosen)."""
        names = [n for n in self.sources if weights.get(n, 0.0) > 0]
        if not names:
            raise ValueError(f"all mixture weights are 0 for sources {sorted(self.sources)}")
        rng = random.Random(self.seed * 1_000_003 + index)
        return rng.choices(names, weights=[weights[n] for n in names])[0]

    def take(self, n: int, weights: Mapping[str, float]) -> list[Sample]:
        """The next ``n`` samples of the run."""
        out = []
        for _ in range(n):
            out.append(self._next_from(self.choose(self.drawn, weights)))
            self.drawn += 1
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "drawn": self.drawn,
                "positions": {k: list(v) for k, v in self.positions.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue where a saved stream stopped (same sources, same seed)."""
        if set(state["positions"]) != set(self.sources) or state["seed"] != self.seed:
            raise ValueError(f"data state is for sources {sorted(state['positions'])} with seed "
                             f"{state['seed']}; this run has {sorted(self.sources)} with seed "
                             f"{self.seed}: resume with the same --data and --seed")
        self.drawn = int(state["drawn"])
        self.positions = {k: [int(e), int(p)] for k, (e, p) in state["positions"].items()}
        self._iters = {}

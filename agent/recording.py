"""Connect the agent loop to the trajectory store: a ``Recorder`` over an ``EpisodeWriter``."""

from __future__ import annotations

from typing import Any

import numpy as np

from trajectories.schema import EpisodeEnd, Step
from trajectories.writer import EpisodeWriter


class WriterRecorder:
    """Adapts ``trajectories.writer.EpisodeWriter`` to the loop's ``Recorder`` protocol."""

    def __init__(self, writer: EpisodeWriter) -> None:
        self.writer = writer

    @property
    def path(self) -> Any:
        return self.writer.path

    def add_step(self, step: Step, frame: np.ndarray | None) -> None:
        if step.index != self.writer.steps:
            raise ValueError(f"step {step.index} out of order; the writer expects {self.writer.steps}")
        self.writer.add_step(frame, action=step.action, thought=step.thought, raw_text=step.raw_text,
                             error=step.error, token_ids=step.token_ids, logprobs=step.logprobs,
                             timings=step.timings, info=step.info, reward=step.reward,
                             terminated=step.terminated, truncated=step.truncated, extra=step.extra)

    def finish(self, end: EpisodeEnd, final_frame: np.ndarray | None) -> None:
        self.writer.finish(end.outcome, end.reward, error=end.error, final_screenshot=final_frame, info=end.info)

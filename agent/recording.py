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


class StoreRecorders:
    """A recorder factory for ``run_episode``: each call starts a new episode in ``store``.

    ``meta`` holds the ``episode_meta`` fields besides the instruction (task_id, suite, seed,
    episode_id, run_config); ``made`` lists the recorders in creation order.
    """

    def __init__(self, store: Any, env: Any, policy: Any, **meta: Any) -> None:
        self.store, self.env, self.policy, self.meta = store, env, policy, meta
        self.made: list[WriterRecorder] = []

    def __call__(self, instruction: str) -> WriterRecorder:
        from agent.loop import episode_meta

        meta = episode_meta(self.env, self.policy, instruction=instruction, **self.meta)
        self.made.append(WriterRecorder(self.store.new_episode(meta)))
        return self.made[-1]

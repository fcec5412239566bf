"""Loss-curve PNG of a run (matplotlib with the Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)


def plot_loss_curve(records: Sequence[Mapping[str, Any]], path: Path, title: str = "") -> Path:
    """Plot loss (and LR on a second axis) against step from metrics records; returns path."""
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    try:
        steps = [r["step"] for r in records]
        ax.plot(steps, [r["loss"] for r in records], color="tab:blue", marker=".", label="loss")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        if records:
            lr_ax = ax.twinx()
            lr_ax.plot(steps, [r["lr"] for r in records], color="tab:orange", alpha=0.6)
            lr_ax.set_ylabel("learning rate", color="tab:orange")
        ax.set_title(title or "training loss")
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path

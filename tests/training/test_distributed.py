"""Data parallelism over gloo: 2 processes match 1 process on the same global batch (DDP,
and DDP + ZeRO-1 sharded optimizer state), and the torchrun command line."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from model.modeling import PixelPilotVLForConditionalGeneration
from training.distributed import torchrun_command
from training.optim import assign_owners

from tests.training.dist_worker import MODES, SOURCES, worker
from tests.training.core_helpers import make_trainer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.integration
def test_two_processes_match_one_process(tmp_path: Path) -> None:
    single = make_trainer("joint_pretrain", str(tmp_path / "single"), SOURCES, steps=3,
                          micro_batch_size=4, grad_accum_steps=2)
    reference = [r.loss for r in single.train()]
    ref_model = PixelPilotVLForConditionalGeneration.from_pretrained(tmp_path / "single/final")
    mp.spawn(worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    for mode in MODES:
        results = [json.loads((tmp_path / mode / f"result-rank{r}.json").read_text())
                   for r in (0, 1)]
        for res in results:
            assert res["losses"] == pytest.approx(reference, abs=2e-5), mode
        model = PixelPilotVLForConditionalGeneration.from_pretrained(tmp_path / mode / "final")
        for (name, x), (_, y) in zip(model.state_dict().items(), ref_model.state_dict().items()):
            torch.testing.assert_close(x, y, rtol=1e-4, atol=2e-5, msg=f"{mode}: {name}")
    shards = [json.loads((tmp_path / "zero1" / f"result-rank{r}.json").read_text())
              for r in (0, 1)]
    # ZeRO-1: each rank holds only part of the optimizer state, together all of it.
    assert all(0 < s["local_state_numel"] < s["total_numel"] * 1.5 for s in shards)


def test_owner_assignment_balances_and_is_deterministic() -> None:
    sizes = [100, 10, 60, 40, 30, 5]
    owners = assign_owners(sizes, 2)
    load = [sum(s for s, o in zip(sizes, owners) if o == r) for r in (0, 1)]
    assert owners == assign_owners(sizes, 2) and sorted(load) == [115, 130]
    assert assign_owners(sizes, 1) == [0] * len(sizes)


def test_torchrun_command_line() -> None:
    cmd = torchrun_command(2, ["--recipe", "sft"])
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--nproc_per_node=2" in cmd and cmd[-3:] == ["training.run", "--recipe", "sft"]
    with pytest.raises(ValueError):
        torchrun_command(0, [])

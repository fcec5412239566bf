"""ZeRO stage 1 for ``MuonAdamW``: optimizer state sharded across data-parallel ranks.

Every rank keeps the full model and the full (DDP-averaged) gradients, but only the
optimizer state of the parameters it *owns*. ``step()`` updates the owned parameters, then
each owner broadcasts its updated tensors so every rank ends with identical weights.

Sharding is by whole parameter, not by flat slices: Muon orthogonalises each weight matrix as
a whole (Newton–Schulz needs the full matrix), so a matrix cannot be split across ranks.
Ownership is a greedy balance by element count over the parameters in a fixed order, so it is
the same on every rank and across restarts.

Memory: Muon keeps one buffer per weight and AdamW two, so each rank holds about 1/world of
that. Checkpoints save one optimizer shard per rank (``state_dict`` is the local shard).

What this module does not do: gradient reduction (DDP does it before ``step``) and ZeRO-2/3.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from training.optim.muon import MuonAdamW, OptimConfig


def assign_owners(sizes: list[int], world_size: int) -> list[int]:
    """Owner rank of each parameter: largest first to the least-loaded rank (ties: lower rank)."""
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    load = [0] * world_size
    owners = [0] * len(sizes)
    for i in sorted(range(len(sizes)), key=lambda k: (-sizes[k], k)):
        rank = min(range(world_size), key=lambda r: (load[r], r))
        owners[i] = rank
        load[rank] += sizes[i]
    return owners


class ZeroMuonAdamW:
    """``MuonAdamW`` over this rank's shard of the parameters; same interface for the trainer.

    ``param_groups`` are the full groups (as from ``split_param_groups``); the inner optimizer
    sees only the owned parameters of each group. ``param_groups`` of this object are the
    inner optimizer's, so the trainer's LR schedule writes ``lr`` there as usual.
    """

    def __init__(self, param_groups: list[dict[str, Any]], cfg: OptimConfig,
                 group: dist.ProcessGroup | None = None) -> None:
        if not dist.is_initialized():
            raise RuntimeError("ZeroMuonAdamW needs torch.distributed initialised "
                               "(training.distributed.init_distributed, or launch with torchrun)")
        self.process_group = group
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)
        all_params = [p for g in param_groups for p in g["params"]]
        owners = assign_owners([p.numel() for p in all_params], self.world_size)
        # Broadcast needs the *global* rank of the owner.
        self._owners = [(p, dist.get_global_rank(group, o) if group is not None else o)
                        for p, o in zip(all_params, owners)]
        owned = {id(p) for p, o in zip(all_params, owners) if o == self.rank}
        local_groups = []
        for g in param_groups:
            mine = [p for p in g["params"] if id(p) in owned]
            # Keep empty groups too: group indices then match on every rank.
            local_groups.append({**g, "params": mine})
        self.optimizer = MuonAdamW(local_groups, cfg)

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    @property
    def state(self) -> Any:
        return self.optimizer.state

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of every parameter (owned or not)."""
        for p, _ in self._owners:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """Update the owned parameters, then each owner broadcasts its shard (one flat buffer
        per owner, synchronous: gloo may reorder concurrent asynchronous collectives)."""
        self.optimizer.step()
        for owner in sorted({o for _, o in self._owners}):
            params = [p for p, o in self._owners if o == owner]
            flat = torch.cat([p.data.reshape(-1) for p in params])
            dist.broadcast(flat, src=owner, group=self.process_group)
            if owner != dist.get_rank():
                offset = 0
                for p in params:
                    p.data.copy_(flat[offset:offset + p.numel()].view_as(p))
                    offset += p.numel()

    def state_dict(self) -> dict[str, Any]:
        """This rank's shard (save one file per rank)."""
        return {"shard": self.optimizer.state_dict(), "rank": self.rank,
                "world_size": self.world_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load the shard saved by the same rank of a run with the same world size."""
        if state.get("world_size") != self.world_size or state.get("rank") != self.rank:
            raise ValueError(f"optimizer shard was saved by rank {state.get('rank')} of "
                             f"{state.get('world_size')}; this is rank {self.rank} of "
                             f"{self.world_size}: resume with the same --nproc")
        self.optimizer.load_state_dict(state["shard"])

    def local_state_numel(self) -> int:
        """Elements of optimizer state held on this rank (to show the sharding saves memory)."""
        return sum(t.numel() for s in self.optimizer.state.values() for t in s.values()
                   if isinstance(t, torch.Tensor))

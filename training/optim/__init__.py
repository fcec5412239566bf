"""Optimizers: Muon + AdamW (``muon``) and its ZeRO-1 sharded variant (``zero``)."""

from training.optim.muon import (MuonAdamW, OptimConfig, build_optimizer, newton_schulz5,
                                 split_param_groups)
from training.optim.zero import ZeroMuonAdamW, assign_owners

__all__ = ["MuonAdamW", "OptimConfig", "ZeroMuonAdamW", "assign_owners", "build_optimizer",
           "newton_schulz5", "split_param_groups"]

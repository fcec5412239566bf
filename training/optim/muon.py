"""Muon (MomentUm Orthogonalized by Newton–Schulz) with AdamW for the parameters it must not touch.

One ``torch.optim.Optimizer`` holds both kinds of parameter group (flag ``use_muon``), so one
LR schedule, one ``state_dict`` and one ZeRO-1 wrapper (``training.optim.zero``) cover both.

Muon update of a 2-D weight ``W`` (A×B) with gradient ``G`` (Moonlight / Kimi settings):

    M ← μ·M + G                       (μ = 0.95)
    U ← NS5(G + μ·M)                  (Nesterov; NS5 = quintic Newton–Schulz, 5 iterations,
                                       coefficients 3.4445, −4.7750, 2.0315)
    W ← W·(1 − lr·wd) − lr·0.2·sqrt(max(A, B))·U      (decoupled weight decay)

The 0.2·sqrt(max(A, B)) factor gives Muon updates the RMS of a typical AdamW update, so both
groups can share one learning rate (Moonlight, "Muon is Scalable for LLM Training").

Which parameters get Muon (``split_param_groups``): 2-D weights of ``nn.Linear`` layers inside
the network — attention, MLP/expert, router, projector, patch embedding. AdamW gets token
embeddings (``nn.Embedding``), the LM head (its rows are per-token, like embeddings), every
norm weight, every bias, the vision position table, and any scalar/1-D parameter (e.g. the
SigLIP temperature). The rule is by module type, not by name, so new layers are classified
without editing a list. ``OptimConfig(muon=False)`` puts every parameter in the AdamW group.

What this module does not do: sharding (``zero.py``), LR schedules (``training.trainer``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.distributed.tensor import DTensor, distribute_tensor

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


@dataclass(frozen=True)
class OptimConfig:
    """Hyper-parameters of Muon + AdamW (one learning rate by default; see module doc)."""

    lr: float = 2e-3  # peak LR of both groups; the schedule multiplies it
    adamw_lr: float | None = None  # None: same as lr (Moonlight's matched-RMS setting)
    weight_decay: float = 0.1  # decoupled, both groups
    momentum: float = 0.95  # Muon momentum μ
    nesterov: bool = True
    ns_steps: int = 5
    betas: tuple[float, float] = (0.9, 0.95)  # AdamW
    eps: float = 1e-8  # AdamW
    muon: bool = True  # False: every parameter gets AdamW (no Muon group), e.g. for a fine-tuning stage

    def __post_init__(self) -> None:
        if self.lr <= 0 or (self.adamw_lr is not None and self.adamw_lr <= 0):
            raise ValueError(f"OptimConfig: learning rates must be > 0, got lr={self.lr}, "
                             f"adamw_lr={self.adamw_lr}")
        if self.weight_decay < 0:
            raise ValueError(f"OptimConfig.weight_decay must be >= 0, got {self.weight_decay}")
        if not 0 <= self.momentum < 1 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError("OptimConfig: momentum and betas must lie in [0, 1)")
        if self.ns_steps < 1:
            raise ValueError(f"OptimConfig.ns_steps must be >= 1, got {self.ns_steps}")
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))


def newton_schulz5(g_AB: torch.Tensor, steps: int = 5, eps: float = 1e-7) -> torch.Tensor:
    """Approximately orthogonalise ``g`` (≈ U·Vᵀ of its SVD) with the quintic iteration.

    The coefficients trade exactness for speed: singular values land in roughly [0.7, 1.2]
    rather than exactly 1, which does not hurt training (Jordan et al., Muon). Runs in float32
    (bfloat16 on CUDA would also do); returns the input's dtype.
    """
    if g_AB.ndim != 2:
        raise ValueError(f"newton_schulz5 needs a 2-D matrix, got shape {tuple(g_AB.shape)}")
    a, b, c = NS_COEFFICIENTS
    x = g_AB.float()
    tall = x.shape[0] > x.shape[1]
    if tall:  # iterate on the wide orientation: X·Xᵀ is the smaller Gram matrix
        x = x.T
    x = x / (x.norm() + eps)  # spectral norm ≤ Frobenius norm ≤ 1: inside the basin
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    if tall:
        x = x.T
    return x.to(g_AB.dtype)


def muon_scale(shape: torch.Size) -> float:
    """Update scale 0.2·sqrt(max(A, B)) matching AdamW's update RMS."""
    return 0.2 * math.sqrt(max(shape[0], shape[1]))


def _orthogonalised(g: torch.Tensor, steps: int) -> torch.Tensor:
    """NS5 of ``g``; an FSDP2-sharded ``DTensor`` is gathered, orthogonalised whole (the same on
    every rank) and sharded back like the parameter, so momentum state stays sharded."""
    if isinstance(g, DTensor):
        full = newton_schulz5(g.full_tensor(), steps)
        return distribute_tensor(full, g.device_mesh, g.placements)
    return newton_schulz5(g, steps)


class MuonAdamW(torch.optim.Optimizer):
    """Muon for groups with ``use_muon=True``, AdamW (decoupled decay) for the rest."""

    def __init__(self, param_groups: list[dict[str, Any]], cfg: OptimConfig) -> None:
        defaults = dict(lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum,
                        nesterov=cfg.nesterov, ns_steps=cfg.ns_steps, betas=cfg.betas,
                        eps=cfg.eps, use_muon=False)
        super().__init__(param_groups, defaults)
        for group in self.param_groups:
            if group["use_muon"]:
                bad = [tuple(p.shape) for p in group["params"] if p.ndim != 2]
                if bad:
                    raise ValueError(f"Muon groups take 2-D weights only, got shapes {bad}; "
                                     "put them in an AdamW group (use_muon=False)")

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        """One update of every parameter that has a gradient."""
        if closure is not None:
            raise ValueError("MuonAdamW.step takes no closure; compute the loss before step()")
        for group in self.param_groups:
            if group["use_muon"]:
                self._muon_group(group)
            else:
                self._adamw_group(group)

    def _muon_group(self, group: dict[str, Any]) -> None:
        lr, wd, mu = group["lr"], group["weight_decay"], group["momentum"]
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p, dtype=torch.float32)
            buf = state["momentum_buffer"]
            g = p.grad.float()
            buf.mul_(mu).add_(g)
            g = g.add(buf, alpha=mu) if group["nesterov"] else buf
            update = _orthogonalised(g, group["ns_steps"])
            p.mul_(1 - lr * wd)
            p.add_(update.to(p.dtype), alpha=-lr * muon_scale(p.shape))

    def _adamw_group(self, group: dict[str, Any]) -> None:
        lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
        beta1, beta2 = group["betas"]
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if "step" not in state:
                state["step"] = 0
                state["exp_avg"] = torch.zeros_like(p, dtype=torch.float32)
                state["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.float32)
            state["step"] += 1
            g = p.grad.float()
            state["exp_avg"].lerp_(g, 1 - beta1)
            state["exp_avg_sq"].mul_(beta2).addcmul_(g, g, value=1 - beta2)
            bias1 = 1 - beta1 ** state["step"]
            bias2 = 1 - beta2 ** state["step"]
            denom = (state["exp_avg_sq"] / bias2).sqrt_().add_(eps)
            p.mul_(1 - lr * wd)
            p.add_((state["exp_avg"] / bias1 / denom).to(p.dtype), alpha=-lr)


def is_muon_param(module: nn.Module, param_name: str, param: nn.Parameter,
                  output_heads: Iterable[nn.Module] = ()) -> bool:
    """The classification rule of the module doc (``param_name`` is local to ``module``)."""
    if param.ndim != 2 or not isinstance(module, nn.Linear) or param_name != "weight":
        return False
    return not any(module is head for head in output_heads)


def split_param_groups(model: nn.Module, cfg: OptimConfig,
                       output_heads: Iterable[nn.Module] | None = None
                       ) -> list[dict[str, Any]]:
    """Muon and AdamW groups over ``model``'s trainable parameters (frozen ones are skipped).

    ``output_heads`` are Linear layers that map to a vocabulary (AdamW); by default the
    model's ``get_output_embeddings()`` if it has one.
    """
    if output_heads is None:
        getter = getattr(model, "get_output_embeddings", None)
        head = getter() if callable(getter) else None
        output_heads = [head] if head is not None else []
    heads = list(output_heads)
    muon: list[nn.Parameter] = []
    adamw: list[nn.Parameter] = []
    seen: set[int] = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            (muon if cfg.muon and is_muon_param(module, name, param, heads) else adamw).append(param)
    groups = []
    if muon:
        groups.append({"params": muon, "use_muon": True, "lr": cfg.lr, "base_lr": cfg.lr})
    if adamw:
        adamw_lr = cfg.adamw_lr or cfg.lr
        groups.append({"params": adamw, "use_muon": False, "lr": adamw_lr, "base_lr": adamw_lr})
    if not groups:
        raise ValueError("the model has no trainable parameters: check the stage's trainable "
                         "predicate")
    return groups


def build_optimizer(model: nn.Module, cfg: OptimConfig,
                    output_heads: Iterable[nn.Module] | None = None) -> MuonAdamW:
    """Muon + AdamW over the trainable parameters of ``model`` (rule: module doc)."""
    return MuonAdamW(split_param_groups(model, cfg, output_heads), cfg)

"""Muon + AdamW: Newton–Schulz orthogonality, the parameter split rule, the exact update."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from training.optim import MuonAdamW, OptimConfig, build_optimizer, newton_schulz5
from training.optim.muon import NS_COEFFICIENTS, muon_scale

from tests.training.core_helpers import tiny_model


@pytest.mark.parametrize("shape", [(64, 64), (32, 96), (96, 32), (128, 16)])
def test_newton_schulz_output_is_near_orthogonal(shape: tuple[int, int]) -> None:
    torch.manual_seed(0)
    g = torch.randn(*shape)
    x = newton_schulz5(g, steps=5)
    sv = torch.linalg.svdvals(x)
    # NS maps each singular value of G/‖G‖_F through the same polynomial; the quintic's fixed
    # coefficients leave them in about [0.7, 1.2] (not exactly 1). Directions whose input
    # singular value is below ~1e-3 of the norm (a square Gaussian matrix's smallest) are
    # not lifted in 5 steps, so they are left out.
    s_in = torch.linalg.svdvals(g) / g.norm()
    kept = sv[s_in > 1e-3]
    assert len(kept) >= len(sv) - 1
    assert float(kept.min()) > 0.6 and float(kept.max()) < 1.25, sv
    assert abs(float(kept.mean()) - 1.0) < 0.25
    # Same singular vectors as the exact polar factor U·Vᵀ: strongly aligned.
    u, _, vh = torch.linalg.svd(g, full_matrices=False)
    cosine = float((x * (u @ vh)).sum() / (x.norm() * (u @ vh).norm()))
    assert cosine > 0.97


def test_newton_schulz_rejects_non_matrices() -> None:
    with pytest.raises(ValueError, match="2-D"):
        newton_schulz5(torch.randn(3, 4, 5))
    assert NS_COEFFICIENTS == (3.4445, -4.7750, 2.0315)


def test_parameter_split_follows_the_documented_rule() -> None:
    model = tiny_model()
    opt = build_optimizer(model, OptimConfig())
    muon = {id(p) for g in opt.param_groups if g["use_muon"] for p in g["params"]}
    names = {id(p): n for n, p in model.named_parameters()}
    muon_names = {names[i] for i in muon}
    adamw_names = set(names.values()) - muon_names
    assert "language_model.layers.0.self_attn.q_proj.weight" in muon_names
    assert "language_model.layers.1.mlp.experts.0.gate_proj.weight" in muon_names
    assert "projector.linear_1.weight" in muon_names
    for name in ("language_model.embed_tokens.weight", "language_model.lm_head.weight",
                 "language_model.norm.weight", "vision_tower.pos_table.weight",
                 "projector.linear_1.bias", "vision_tower.final_norm.weight"):
        assert name in adamw_names, name
    assert all(p.ndim == 2 for g in opt.param_groups if g["use_muon"] for p in g["params"])
    assert len(muon) + len(adamw_names) == len(list(model.parameters()))


def test_without_muon_every_parameter_is_adamw_and_steps_as_torch_adamw() -> None:
    model, ref = tiny_model(), tiny_model()
    opt = build_optimizer(model, OptimConfig(lr=1e-3, muon=False, betas=(0.9, 0.999)))
    assert [g["use_muon"] for g in opt.param_groups] == [False]
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
    torch_opt = torch.optim.AdamW(ref.parameters(), lr=1e-3, weight_decay=0.1, betas=(0.9, 0.999))
    for p, q in zip(model.parameters(), ref.parameters()):
        g = torch.randn_like(p)
        p.grad, q.grad = g.clone(), g.clone()
    opt.step()
    torch_opt.step()
    for (name, p), q in zip(model.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-5, atol=1e-6, msg=name)


def test_muon_step_is_the_documented_update() -> None:
    torch.manual_seed(1)
    layer = nn.Linear(24, 40, bias=False)
    w0 = layer.weight.detach().clone()
    cfg = OptimConfig(lr=0.01, weight_decay=0.1, momentum=0.95)
    opt = MuonAdamW([{"params": [layer.weight], "use_muon": True, "base_lr": 0.01}], cfg)
    grads = [torch.randn(40, 24) for _ in range(2)]
    buf = torch.zeros(40, 24)
    expected = w0.clone()
    for g in grads:
        layer.weight.grad = g.clone()
        opt.step()
        buf = 0.95 * buf + g
        update = newton_schulz5(g + 0.95 * buf)
        expected = expected * (1 - 0.01 * 0.1) - 0.01 * 0.2 * math.sqrt(40) * update
    assert muon_scale(torch.Size([40, 24])) == pytest.approx(0.2 * math.sqrt(40))
    torch.testing.assert_close(layer.weight.detach(), expected, rtol=1e-5, atol=1e-6)


def test_adamw_group_matches_torch_adamw() -> None:
    torch.manual_seed(2)
    a = nn.Parameter(torch.randn(10))
    b = nn.Parameter(a.detach().clone())
    cfg = OptimConfig(lr=0.01, weight_decay=0.1, betas=(0.9, 0.95), eps=1e-8)
    ours = MuonAdamW([{"params": [a], "use_muon": False, "base_lr": 0.01}], cfg)
    ref = torch.optim.AdamW([b], lr=0.01, weight_decay=0.1, betas=(0.9, 0.95), eps=1e-8)
    for _ in range(3):
        g = torch.randn(10)
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-6, atol=1e-7)


def test_bad_configs_and_groups_are_refused() -> None:
    with pytest.raises(ValueError, match="learning rates"):
        OptimConfig(lr=0)
    with pytest.raises(ValueError, match="2-D"):
        MuonAdamW([{"params": [nn.Parameter(torch.zeros(3))], "use_muon": True}], OptimConfig())
    frozen = nn.Linear(2, 2)
    frozen.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        build_optimizer(frozen, OptimConfig())

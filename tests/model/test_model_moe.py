"""MoE decoder: routing vs a naive reference, selection-only bias, balancing rule, masks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from model.config import TextConfig
from model.decoder import MoE, MoEDecoder, positions_from_segments, segment_causal_mask

CFG = TextConfig(vocab_size=256, hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2,
                 head_dim=8, intermediate_size=64, moe_intermediate_size=16,
                 num_routed_experts=8, num_shared_experts=1, num_experts_per_tok=2,
                 routed_scaling_factor=2.5)


def _moe(seed: int = 0) -> MoE:
    torch.manual_seed(seed)
    moe = MoE(CFG)
    moe.e_score_correction_bias.copy_(torch.randn(CFG.num_routed_experts) * 0.1)
    return moe


def _naive(moe: MoE, x_ND: torch.Tensor) -> torch.Tensor:
    rows = []
    for x in x_ND:  # one token at a time, straight from the definition
        scores = torch.sigmoid(moe.router.weight @ x)
        chosen = (scores + moe.e_score_correction_bias).topk(CFG.num_experts_per_tok).indices
        w = scores[chosen] / scores[chosen].sum() * CFG.routed_scaling_factor
        y = sum(w[j] * moe.experts[int(e)](x) for j, e in enumerate(chosen))
        rows.append(y + moe.shared_experts(x))
    return torch.stack(rows)


def test_routing_equals_naive_reference() -> None:
    moe = _moe()
    x = torch.randn(2, 13, CFG.hidden_size)
    with torch.no_grad():
        fast = moe(x)
        slow = _naive(moe, x.reshape(-1, CFG.hidden_size)).view_as(x)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)


def test_gradients_reach_experts_and_router_not_bias() -> None:
    moe = _moe()
    moe(torch.randn(3, 7, CFG.hidden_size)).pow(2).sum().backward()
    assert moe.router.weight.grad is not None and moe.router.weight.grad.abs().sum() > 0
    assert not moe.e_score_correction_bias.requires_grad
    assert "e_score_correction_bias" in moe.state_dict()
    used = [e for e in moe.experts if e.gate_proj.weight.grad.abs().sum() > 0]
    assert len(used) >= 2


def test_bias_changes_selection_not_weights() -> None:
    moe = _moe()
    x_ND = torch.randn(20, CFG.hidden_size)
    moe.e_score_correction_bias.zero_()
    moe.e_score_correction_bias[5] = 100.0  # expert 5 always selected
    experts, weights = moe.route(x_ND)
    assert (experts == 5).any(dim=1).all()
    scores = torch.sigmoid(x_ND @ moe.router.weight.T)
    picked = scores.gather(1, experts)
    torch.testing.assert_close(weights, picked / picked.sum(-1, keepdim=True) * 2.5)
    assert weights.max() < 2.5 + 1e-6  # a +100 bias never leaks into the weights


def test_update_rule_moves_bias_toward_balance() -> None:
    moe = _moe()
    moe.e_score_correction_bias.zero_()
    with torch.no_grad():
        moe.router.weight[:2] += 0.5  # experts 0 and 1 get high scores for positive inputs
    x = torch.rand(4, 64, CFG.hidden_size)
    moe.train()

    def imbalance() -> float:
        moe(x)
        load = moe.expert_load.float()
        return float(load.max() / load.mean())

    start = imbalance()
    first = moe.update_bias(gamma=0.05)
    bias = moe.e_score_correction_bias
    assert torch.all(bias[first > first.mean()] < 0) and torch.all(bias[first < first.mean()] > 0)
    for _ in range(30):
        moe(x)
        moe.update_bias(gamma=0.05)
    assert imbalance() < start - 0.5
    counted = moe.expert_load.clone()
    moe.eval()
    moe(x)
    assert torch.equal(moe.expert_load, counted)  # eval forwards are not counted


def test_eval_mode_does_not_count_load() -> None:
    moe = _moe().eval()
    moe(torch.randn(1, 5, CFG.hidden_size))
    assert int(moe.expert_load.sum()) == 0
    assert int(moe.update_bias().abs().sum()) == 0


def test_segments_positions_and_mask() -> None:
    seg = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 2, 2, 0]])
    assert positions_from_segments(seg).tolist() == [[0, 1, 0, 1, 2], [0, 1, 0, 1, 0]]
    mask = segment_causal_mask(seg, 3)[:, 0]
    assert mask[0].tolist() == [[False, False, True, False, False],
                                [False, False, True, True, False],
                                [False, False, True, True, True]]
    assert mask[1, 2].tolist() == [False, False, False, False, True]  # pad row: itself only


@pytest.fixture(scope="module")
def decoder() -> MoEDecoder:
    torch.manual_seed(0)
    return MoEDecoder(CFG).eval()


def test_packed_text_equals_separate(decoder: MoEDecoder) -> None:
    a, b = torch.randn(1, 5, CFG.hidden_size), torch.randn(1, 7, CFG.hidden_size)
    seg = torch.tensor([[1] * 5 + [2] * 7 + [0] * 2])
    packed_in = torch.cat([a, b, torch.zeros(1, 2, CFG.hidden_size)], dim=1)
    with torch.no_grad():
        packed = decoder(packed_in, seg)
        sep = torch.cat([decoder(a), decoder(b)], dim=1)
    torch.testing.assert_close(packed[:, :12], sep, atol=1e-5, rtol=1e-5)


def test_left_and_right_padding_equal_unpadded(decoder: MoEDecoder) -> None:
    x = torch.randn(1, 6, CFG.hidden_size)
    pad = torch.zeros(1, 3, CFG.hidden_size)
    with torch.no_grad():
        ref = decoder(x)
        left = decoder(torch.cat([pad, x], 1), torch.tensor([[0] * 3 + [1] * 6]))[:, 3:]
        right = decoder(torch.cat([x, pad], 1), torch.tensor([[1] * 6 + [0] * 3]))[:, :6]
    torch.testing.assert_close(left, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(right, ref, atol=1e-5, rtol=1e-5)
    assert torch.isfinite(F.normalize(left, dim=-1)).all()


def test_bias_stays_float32_in_bf16_model() -> None:
    moe = _moe().to(torch.bfloat16)
    assert moe.router.weight.dtype == torch.bfloat16
    assert moe.e_score_correction_bias.dtype == torch.float32
    moe.train()
    y = moe(torch.randn(2, 5, CFG.hidden_size, dtype=torch.bfloat16))
    assert y.dtype == torch.bfloat16
    before = moe.e_score_correction_bias.clone()
    moe.update_bias(gamma=1e-4)
    assert not torch.equal(before, moe.e_score_correction_bias)  # 1e-4 steps are not lost

"""The language decoder: a DeepSeek-V3-style Mixture-of-Experts transformer (Moonlight layout).

Per layer: RMSNorm → attention → RMSNorm → FFN, where the first ``first_k_dense`` FFNs are dense
SwiGLU and the rest are MoE: ``num_shared_experts`` always-on experts (fused into one SwiGLU of
width ``num_shared·moe_intermediate``) plus ``num_routed_experts`` routed SwiGLU experts.

Routing (DeepSeek-V3, aux-loss-free): scores ``s = sigmoid(x·W_r)``; experts are *selected* by
top-k of ``s + b`` where ``b = e_score_correction_bias`` is a buffer updated outside the gradient
by ``b += γ·sign(mean_load − load)`` (``MoE.update_bias``, called by the trainer after each
step); the *weights* use ``s`` only: top-k scores normalised to sum 1, times
``routed_scaling_factor``. Loads are counted in training mode only. Dispatch sorts the (token,
slot) pairs by expert id and runs each expert once on its contiguous slice (a loop over experts,
never over tokens); outputs return with ``index_add_``.

Attention is GQA, not Kimi-VL's MLA. Why: GQA maps directly onto
``scaled_dot_product_attention`` (``enable_gqa``) and flash kernels, keeps the KV cache a plain
``[B, H_kv, S, D]`` tensor that is trivial to crop and reuse as a prefix, and its cache is small
enough at our scale (H_kv=4, D=128: 1024 values per token and layer vs 4096 for MHA; MLA's 576
needs the absorbed-projection decode path to realise its saving). Parameter counts stay within
1 % of Moonlight's (see tests).

Masks: ``attention_mask`` ``[B, S]`` (S = cached + new tokens) holds 0 for padding and a
positive *segment id* per token; tokens attend causally within their own segment only, so
1/0 masks give ordinary (left or right) padding and 1,1,2,2,2,3 packs samples into one row with
positions restarting per segment. No mask means one unpadded segment (SDPA ``is_causal``).

Shape legend: B batch, T new tokens, S cached+new tokens, D hidden, H heads, K kv heads,
Dh head dim, P rotary pairs, N tokens (B·T), E routed experts, k experts per token, F ffn width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from model.config import TextConfig
from model.rope import apply_rope, rope_1d


class KVCache:
    """Keys/values per layer, ``[B, K, S, Dh]``, grown by concatenation; croppable for reuse."""

    def __init__(self, num_layers: int) -> None:
        self.keys: list[torch.Tensor | None] = [None] * num_layers
        self.values: list[torch.Tensor | None] = [None] * num_layers

    @property
    def seq_len(self) -> int:
        """Number of cached positions (0 when empty)."""
        k = self.keys[0]
        return 0 if k is None else k.shape[2]

    def update(self, layer: int, k_BKTD: torch.Tensor, v_BKTD: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Append the new keys/values of ``layer``; returns the full ``[B, K, S, Dh]`` pair."""
        old_k, old_v = self.keys[layer], self.values[layer]
        if old_k is not None and old_v is not None:
            k_BKTD = torch.cat([old_k, k_BKTD], dim=2)
            v_BKTD = torch.cat([old_v, v_BKTD], dim=2)
        self.keys[layer], self.values[layer] = k_BKTD, v_BKTD
        return k_BKTD, v_BKTD

    def crop(self, length: int) -> None:
        """Keep only the first ``length`` positions (for prefix reuse)."""
        if not 0 <= length <= self.seq_len:
            raise ValueError(f"cannot crop a cache of {self.seq_len} positions to {length}")
        for i, (k, v) in enumerate(zip(self.keys, self.values)):
            if k is not None and v is not None:
                self.keys[i], self.values[i] = k[:, :, :length], v[:, :, :length]

    def copy(self) -> KVCache:
        """A new cache sharing the tensors (safe: ``update`` never writes in place)."""
        new = KVCache(len(self.keys))
        new.keys, new.values = list(self.keys), list(self.values)
        return new


def positions_from_segments(seg_BS: torch.Tensor) -> torch.Tensor:
    """Position of each token inside its run of equal segment ids (restarts at every change)."""
    idx_S = torch.arange(seg_BS.shape[1], device=seg_BS.device)
    change_BS = torch.ones_like(seg_BS, dtype=torch.bool)
    change_BS[:, 1:] = seg_BS[:, 1:] != seg_BS[:, :-1]
    start_BS = torch.where(change_BS, idx_S, 0).cummax(dim=1).values
    return idx_S - start_BS


def segment_causal_mask(seg_BS: torch.Tensor, new_tokens: int) -> torch.Tensor:
    """Boolean mask ``[B, 1, T, S]``: causal, same segment, no padding keys.

    Padding queries may attend to themselves so that no row is empty (SDPA would give NaN).
    """
    total = seg_BS.shape[1]
    q_idx_T = torch.arange(total - new_tokens, total, device=seg_BS.device)
    k_idx_S = torch.arange(total, device=seg_BS.device)
    causal_TS = k_idx_S[None, :] <= q_idx_T[:, None]
    seg_q_BT = seg_BS[:, total - new_tokens:]
    same_BTS = (seg_q_BT[:, :, None] == seg_BS[:, None, :]) & (seg_BS[:, None, :] > 0)
    diag_TS = k_idx_S[None, :] == q_idx_T[:, None]
    return ((same_BTS & causal_TS) | diag_TS).unsqueeze(1)


def segment_spans(seg_BS: torch.Tensor) -> list[tuple[int, int, int]]:
    """``(row, start, end)`` of every run of equal positive segment ids (padding skipped)."""
    seg = seg_BS.tolist()
    spans = []
    for row, ids in enumerate(seg):
        start = 0
        for i in range(1, len(ids) + 1):
            if i == len(ids) or ids[i] != ids[start]:
                if ids[start] > 0:
                    spans.append((row, start, i))
                start = i
    return spans


def _segment_attention(q_BHTD: torch.Tensor, k_BKTD: torch.Tensor, v_BKTD: torch.Tensor,
                       spans: list[tuple[int, int, int]]) -> torch.Tensor:
    """Causal attention inside each ``(row, start, end)`` span; positions outside spans get 0.

    Rows are cut with ``unbind``/``split`` (one cat in the backward pass) rather than one slice
    per span, whose backward would zero-fill a full-size gradient for every span.
    """
    b, _, t, _ = q_BHTD.shape
    by_row: list[list[tuple[int, int]]] = [[] for _ in range(b)]
    for row, start, end in spans:
        by_row[row].append((start, end))
    rows = []
    for row, (q_HTD, k_KTD, v_KTD) in enumerate(zip(q_BHTD.unbind(0), k_BKTD.unbind(0), v_BKTD.unbind(0))):
        cuts, pieces, pos = [], [], 0  # segment and gap lengths covering [0, t)
        for start, end in sorted(by_row[row]):
            if start > pos:
                cuts.append((start - pos, False))
            cuts.append((end - start, True))
            pos = end
        if pos < t:
            cuts.append((t - pos, False))
        lengths = [n for n, _ in cuts]
        for (n, is_segment), q, k, v in zip(cuts, q_HTD.split(lengths, dim=1), k_KTD.split(lengths, dim=1),
                                             v_KTD.split(lengths, dim=1)):
            if is_segment:
                pieces.append(F.scaled_dot_product_attention(q[None], k[None], v[None], is_causal=n > 1,
                                                             enable_gqa=True)[0])
            else:
                pieces.append(q.new_zeros(q.shape))
        rows.append(torch.cat(pieces, dim=1))
    return torch.stack(rows, dim=0)


class RMSNorm(nn.Module):
    """Root-mean-square norm with a learnable scale, computed in float32."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_f = x.float()
        x_f = x_f * torch.rsqrt(x_f.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x_f.to(x.dtype)


class Attention(nn.Module):
    """Grouped-query attention with RoPE and an optional KV cache."""

    def __init__(self, cfg: TextConfig, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.num_heads, self.num_kv, self.head_dim = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        self.q_proj = nn.Linear(cfg.hidden_size, cfg.num_heads * cfg.head_dim, bias=False)
        self.k_proj = nn.Linear(cfg.hidden_size, cfg.num_kv_heads * cfg.head_dim, bias=False)
        self.v_proj = nn.Linear(cfg.hidden_size, cfg.num_kv_heads * cfg.head_dim, bias=False)
        self.o_proj = nn.Linear(cfg.num_heads * cfg.head_dim, cfg.hidden_size, bias=False)

    def forward(self, x_BTD: torch.Tensor, cos_BTP: torch.Tensor, sin_BTP: torch.Tensor,
                mask: torch.Tensor | list[tuple[int, int, int]] | None, is_causal: bool,
                cache: KVCache | None) -> torch.Tensor:
        """``mask``: a boolean ``[B, 1, T, S]`` mask, or ``(row, start, end)`` segment spans
        (uncached packed rows), or None with ``is_causal``."""
        b, t, _ = x_BTD.shape
        q_BHTD = self.q_proj(x_BTD).view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
        k_BKTD = self.k_proj(x_BTD).view(b, t, self.num_kv, self.head_dim).transpose(1, 2)
        v_BKTD = self.v_proj(x_BTD).view(b, t, self.num_kv, self.head_dim).transpose(1, 2)
        cos_B1TP, sin_B1TP = cos_BTP.unsqueeze(1), sin_BTP.unsqueeze(1)
        q_BHTD = apply_rope(q_BHTD, cos_B1TP, sin_B1TP)
        k_BKTD = apply_rope(k_BKTD, cos_B1TP, sin_B1TP)
        if cache is not None:
            k_BKTD, v_BKTD = cache.update(self.layer_idx, k_BKTD, v_BKTD)
        if isinstance(mask, list):  # packed rows without a cache: one causal block per segment
            out_BHTD = _segment_attention(q_BHTD, k_BKTD, v_BKTD, mask)
        else:
            out_BHTD = F.scaled_dot_product_attention(q_BHTD, k_BKTD, v_BKTD, attn_mask=mask,
                                                      is_causal=is_causal, enable_gqa=True)
        return self.o_proj(out_BHTD.transpose(1, 2).reshape(b, t, -1))


class SwiGLU(nn.Module):
    """``down(silu(gate(x)) · up(x))``: the FFN of dense layers and of every expert."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class MoE(nn.Module):
    """Shared + routed SwiGLU experts with sigmoid routing and aux-loss-free bias balancing."""

    e_score_correction_bias: torch.Tensor

    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.top_k = cfg.num_experts_per_tok
        self.router = nn.Linear(cfg.hidden_size, cfg.num_routed_experts, bias=False)
        # Selection-only bias: persistent (saved with the weights), never receives gradients.
        self.register_buffer("e_score_correction_bias", torch.zeros(cfg.num_routed_experts))
        self.experts = nn.ModuleList(SwiGLU(cfg.hidden_size, cfg.moe_intermediate_size)
                                     for _ in range(cfg.num_routed_experts))
        self.shared_experts: SwiGLU | None = (
            SwiGLU(cfg.hidden_size, cfg.num_shared_experts * cfg.moe_intermediate_size)
            if cfg.num_shared_experts else None)
        self._load: torch.Tensor | None = None  # tokens per expert since the last update

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]
        # Keep the selection bias in float32 through .to(bfloat16)/.half(): updates of size γ
        # (1e-3) would round away in bf16's 8-bit mantissa.
        module = super()._apply(fn, recurse)
        if self.e_score_correction_bias.dtype != torch.float32:
            self.e_score_correction_bias = self.e_score_correction_bias.float()
        return module

    def route(self, x_ND: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Expert ids ``[N, k]`` (selected with the bias) and weights ``[N, k]`` (without it)."""
        scores_NE = torch.sigmoid(self.router(x_ND).float())
        biased_NE = scores_NE + self.e_score_correction_bias.float()
        experts_Nk = biased_NE.topk(self.top_k, dim=-1).indices
        weights_Nk = scores_NE.gather(1, experts_Nk)
        if self.cfg.norm_topk_prob:
            weights_Nk = weights_Nk / (weights_Nk.sum(-1, keepdim=True) + 1e-20)
        return experts_Nk, weights_Nk * self.cfg.routed_scaling_factor

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        x_ND = x_BTD.reshape(-1, x_BTD.shape[-1])
        experts_Nk, weights_Nk = self.route(x_ND)
        counts_E = torch.bincount(experts_Nk.flatten(), minlength=len(self.experts))
        if self.training:
            self._load = counts_E if self._load is None else self._load + counts_E
        # Group (token, slot) pairs by expert: one contiguous slice per expert.
        order = experts_Nk.flatten().argsort(stable=True)
        token_idx = order // self.top_k
        x_sorted = x_ND.index_select(0, token_idx)
        # With gradients every expert runs (possibly on 0 rows) so all parameters join the graph
        # (DDP-safe); without (inference, decode) experts with no tokens are skipped.
        counts = counts_E.tolist()
        run_all = torch.is_grad_enabled()
        outs = [expert(chunk) for expert, chunk, n in zip(self.experts, x_sorted.split(counts), counts)
                if run_all or n]
        y_sorted = torch.cat(outs) * weights_Nk.flatten()[order].unsqueeze(-1).to(x_ND.dtype)
        y_ND = torch.zeros_like(x_ND).index_add_(0, token_idx, y_sorted)
        if self.shared_experts is not None:
            y_ND = y_ND + self.shared_experts(x_ND)
        return y_ND.view_as(x_BTD)

    @property
    def expert_load(self) -> torch.Tensor:
        """Tokens routed to each expert (training mode) since the last ``update_bias``."""
        if self._load is None:
            return torch.zeros(len(self.experts), dtype=torch.long,
                               device=self.e_score_correction_bias.device)
        return self._load

    @torch.no_grad()
    def update_bias(self, gamma: float | None = None, load: torch.Tensor | None = None
                    ) -> torch.Tensor:
        """Aux-loss-free balancing: ``b += γ·sign(mean(load) − load)``; resets the counter.

        Pass ``load`` (e.g. all-reduced across ranks) to override the local count. Returns the
        load that was used. With gradient checkpointing call it once per optimizer step as
        usual; recomputation doubles every count, which the sign rule ignores.
        """
        load_E = (self.expert_load if load is None else load).float()
        self._load = None
        if load_E.sum() == 0:
            return load_E
        gamma = self.cfg.bias_update_speed if gamma is None else gamma
        self.e_score_correction_bias += gamma * torch.sign(load_E.mean() - load_E)
        return load_E


class DecoderLayer(nn.Module):
    """RMSNorm → attention → residual; RMSNorm → dense SwiGLU or MoE → residual."""

    def __init__(self, cfg: TextConfig, layer_idx: int) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg, layer_idx)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp: nn.Module = (SwiGLU(cfg.hidden_size, cfg.intermediate_size)
                               if layer_idx < cfg.first_k_dense else MoE(cfg))

    def forward(self, x_BTD: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                mask: torch.Tensor | list[tuple[int, int, int]] | None, is_causal: bool, cache: KVCache | None
                ) -> torch.Tensor:
        x_BTD = x_BTD + self.self_attn(self.input_layernorm(x_BTD), cos, sin, mask, is_causal,
                                       cache)
        return x_BTD + self.mlp(self.post_attention_layernorm(x_BTD))


class MoEDecoder(nn.Module):
    """Token embeddings, decoder layers, final norm and LM head."""

    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(cfg, i) for i in range(cfg.num_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)

    def moe_layers(self) -> list[MoE]:
        """The MoE FFNs, in layer order (for bias updates and load statistics)."""
        return [layer.mlp for layer in self.layers if isinstance(layer.mlp, MoE)]

    def forward(self, inputs_embeds_BTD: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, cache: KVCache | None = None
                ) -> torch.Tensor:
        """Final hidden states ``[B, T, D]``.

        ``attention_mask`` ``[B, S]`` covers cached + new tokens (0 = pad, >0 = segment id);
        ``position_ids`` ``[B, T]`` default to each token's index within its segment.
        """
        b, t, _ = inputs_embeds_BTD.shape
        past = cache.seq_len if cache is not None else 0
        mask, is_causal, seg_BS = None, False, attention_mask
        if seg_BS is not None and seg_BS.shape != (b, past + t):
            raise ValueError(f"attention_mask must be [batch, cached + new] = {(b, past + t)}, "
                             f"got {tuple(seg_BS.shape)}")
        if seg_BS is not None and bool((seg_BS == 1).all()):
            seg_BS = None  # plain causal: let SDPA pick its fastest path
        if seg_BS is not None and cache is None:
            # Training / uncached forward: per-segment causal blocks instead of a dense
            # [T, T] mask, so a packed row costs the sum of its samples' attention, not T².
            mask = segment_spans(seg_BS)
        elif seg_BS is not None:
            mask = segment_causal_mask(seg_BS, t)
        elif past == 0:
            is_causal = t > 1
        elif t > 1:
            ones_BS = torch.ones(b, past + t, dtype=torch.long, device=inputs_embeds_BTD.device)
            mask = segment_causal_mask(ones_BS, t)
        if position_ids is None:
            if seg_BS is None:
                position_ids = torch.arange(past, past + t, device=inputs_embeds_BTD.device)
                position_ids = position_ids.expand(b, t)
            else:
                position_ids = positions_from_segments(seg_BS)[:, past:]
        cos, sin = rope_1d(position_ids, self.cfg.head_dim, self.cfg.rope_theta)
        x_BTD = inputs_embeds_BTD
        for layer in self.layers:
            x_BTD = layer(x_BTD, cos, sin, mask, is_causal, cache)
        return self.norm(x_BTD)


@dataclass(frozen=True)
class ParameterCounts:
    """Parameter totals of a decoder; ``activated`` counts k of the E routed experts per layer."""

    total: int
    activated: int
    embedding: int  # input embedding + LM head

    @property
    def total_non_embedding(self) -> int:
        return self.total - self.embedding

    @property
    def activated_non_embedding(self) -> int:
        return self.activated - self.embedding


def parameter_counts(decoder: MoEDecoder) -> ParameterCounts:
    """Count parameters (works on the meta device: only shapes are read)."""
    total = sum(p.numel() for p in decoder.parameters())
    inactive = 0
    for moe in decoder.moe_layers():
        per_expert = sum(p.numel() for p in moe.experts[0].parameters())
        inactive += per_expert * (len(moe.experts) - moe.top_k)
    embedding = decoder.embed_tokens.weight.numel() + decoder.lm_head.weight.numel()
    return ParameterCounts(total=total, activated=total - inactive, embedding=embedding)

"""training.data.packing: packed samples stay isolated; images keep row-major order; truncation rules."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from model.processing import Processor
from model.processing.processor import IGNORE_INDEX
from training.data.gui_samples import grounding_sample
from training.data.packing import (SampleTooLongError, batch_tokens, collate_captions, collate_packed, collate_padded,
                                   compact_pixels, first_fit, iter_packed_batches, pack_samples)
from training.data.text import text_samples


@pytest.fixture(scope="module")
def processor() -> Processor:
    return Processor.default()


@pytest.fixture(scope="module")
def samples(processor: Processor) -> list[dict]:
    """Small MiniWoB-sized grounding samples (with images) and text samples."""
    grounding = [grounding_sample(s, processor, style="miniwob", size=(160, 210)) for s in range(3)]
    text = [t for t in text_samples(processor, max_tokens=64, generated=0) if len(t["input_ids"]) > 20][:2]
    return [grounding[0], text[0], grounding[1], text[1], grounding[2]]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 50), min_size=0, max_size=30), st.integers(50, 120), st.booleans())
def test_first_fit_uses_every_item_once_and_never_overfills(lengths: list[int], max_len: int, dec: bool) -> None:
    bins = first_fit(lengths, max_len, decreasing=dec)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= max_len for b in bins)
    if not dec:
        assert all(b == sorted(b) for b in bins)


def _per_token_logprobs(model: torch.nn.Module, batch: dict) -> torch.Tensor:
    with torch.no_grad():
        return torch.log_softmax(model(**batch).logits.float(), dim=-1)


def test_a_packed_row_computes_what_each_sample_computes_alone(samples: list[dict]) -> None:
    from model.config import tiny
    from model.modeling import build_model

    torch.manual_seed(0)
    model = build_model(tiny()).eval()
    total = sum(len(s["input_ids"]) for s in samples)
    packed = collate_packed(samples, total + 7)
    assert packed["input_ids"].shape == (1, total + 7) and packed["attention_mask"].max() == len(samples)
    logp = _per_token_logprobs(model, packed)[0]
    col = 0
    for s in samples:
        n = len(s["input_ids"])
        alone = collate_padded([s])
        single = _per_token_logprobs(model, alone)[0]
        assert torch.allclose(logp[col:col + n], single, atol=1e-5)
        # Same per-sample loss (labels shifted within the segment, first token never predicted).
        labels = torch.tensor(s["labels"])[1:]
        keep = labels != IGNORE_INDEX
        packed_loss = -logp[col:col + n - 1][keep].gather(-1, labels[keep, None]).mean()
        single_loss = -single[:-1][keep].gather(-1, labels[keep, None]).mean()
        assert abs(packed_loss.item() - single_loss.item()) < 1e-5
        col += n


def test_images_keep_row_major_order_across_packed_rows(samples: list[dict]) -> None:
    longest = max(len(s["input_ids"]) for s in samples)
    batch = collate_packed(samples, longest + 40)
    assert batch["input_ids"].shape[0] >= 2
    order = []  # which sample fills each (row, segment), found by its tokens
    for r in range(batch["input_ids"].shape[0]):
        for seg in range(1, int(batch["attention_mask"][r].max()) + 1):
            ids = batch["input_ids"][r][batch["attention_mask"][r] == seg].tolist()
            order.append(next(i for i, s in enumerate(samples) if s["input_ids"] == ids))
            labels = batch["labels"][r][batch["attention_mask"][r] == seg]
            assert labels[0] == IGNORE_INDEX and labels[1:].tolist() == samples[order[-1]]["labels"][1:]
    assert sorted(order) == list(range(len(samples)))
    with_images = [samples[i] for i in order if "pixel_values" in samples[i]]
    assert torch.equal(batch["pixel_values"], torch.cat([s["pixel_values"] for s in with_images]))
    assert torch.equal(batch["image_grid_hws"], torch.cat([s["image_grid_hws"] for s in with_images]))


def test_raw_images_are_processed_like_the_processor_does(samples: list[dict], processor: Processor) -> None:
    from training.data.gui_samples import grounding_sample as gs
    from training.data.synthetic import layout, render

    s = gs(0, processor, style="miniwob", size=(160, 210))
    raw = {"input_ids": s["input_ids"], "labels": s["labels"], "images": [render(layout(0, style="miniwob",
                                                                                      size=(160, 210)))]}
    a, b = collate_padded([s]), collate_padded([raw])
    assert torch.equal(a["pixel_values"], b["pixel_values"]) and torch.equal(a["image_grid_hws"], b["image_grid_hws"])


def test_compact_samples_collate_to_the_same_bits_in_a_quarter_of_the_memory(samples: list[dict],
                                                                            processor: Processor) -> None:
    images = processor.image_processor
    compact = [compact_pixels(s, images) for s in samples]
    with_images = [(s, c) for s, c in zip(samples, compact) if s.get("pixel_values") is not None]
    assert with_images and all(c["pixel_values"].dtype == torch.uint8 for _, c in with_images)
    assert all(s["pixel_values"].nbytes == 4 * c["pixel_values"].nbytes for s, c in with_images)
    assert all(s["pixel_values"].dtype == torch.float32 for s in samples if s.get("pixel_values") is not None)
    for collate in (lambda xs: collate_packed(xs, 4096, image_processor=images),
                    lambda xs: collate_padded(xs, image_processor=images)):
        a, b = collate(samples), collate(compact)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        assert b["pixel_values"].dtype == torch.float32
    assert compact_pixels(compact[0], images) is compact[0]  # already compact
    with pytest.raises(ValueError, match="normalize"):
        images.raw_patches(torch.full((1, 3, 14, 14), 5.0))


def test_truncation_rules(samples: list[dict]) -> None:
    image_sample, text_sample = samples[0], samples[1]
    n = len(text_sample["input_ids"])
    result = pack_samples([text_sample, image_sample], n - 5)
    assert result.truncated == 1 and result.dropped == 1  # text is cut; the cut would split an image
    assert len(result.rows[0][0]["input_ids"]) == n - 5
    assert pack_samples([text_sample], n - 5, overflow="drop").dropped == 1
    with pytest.raises(SampleTooLongError, match="max_len"):
        pack_samples([text_sample], n - 5, overflow="error")
    with pytest.raises(SampleTooLongError):
        collate_packed([image_sample], 10)


def test_padded_rows_and_fill(samples: list[dict]) -> None:
    padded = collate_padded(samples)
    longest = max(len(s["input_ids"]) for s in samples)
    assert padded["input_ids"].shape == (len(samples), longest)
    assert set(padded["attention_mask"].unique().tolist()) <= {0, 1}
    real, slots = batch_tokens(padded)
    assert real == sum(len(s["input_ids"]) for s in samples) and slots == len(samples) * longest
    packed = list(iter_packed_batches(samples, longest + 40, rows_per_batch=1))
    assert sum(batch_tokens(b)[0] for b in packed) == real


def test_caption_batches(processor: Processor) -> None:
    from training.data.gui_samples import caption_sample

    caps = [caption_sample(s, processor, style="miniwob", size=(160, 210)) for s in range(2)]
    batch = collate_captions(caps)
    assert batch["caption_ids"].shape[0] == 2 == batch["image_grid_hws"].shape[0]
    assert batch["caption_mask"].sum(1).tolist() == [len(c["caption_ids"]) for c in caps]
    assert batch["pixel_values"].shape[0] == int(batch["image_grid_hws"].prod(1).sum())

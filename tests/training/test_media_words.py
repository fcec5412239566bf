"""Dense media-word targets: which label each image token shows, carried through collation into
``media_word_loss`` and ``LMModule``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from model.config import PRESETS
from model.modeling import build_model
from model.processing import Processor, num_media_tokens
from model.processing.image_processor import ImageProcessorConfig
from model.processing.tokenizer import encode_text
from training.data.media_words import media_word_targets
from training.data.packing import collate_packed, collate_padded
from training.data.reading_screens import reading_sample, reading_screen
from training.losses import media_word_loss
from training.stages import LMModule


@pytest.fixture(scope="module")
def processor() -> Processor:
    return Processor.default(ImageProcessorConfig(max_patches=192))


def _cells(processor: Processor, size: tuple[int, int]) -> tuple[int, float, float]:
    """(merged grid width, cell width, cell height) in screen pixels."""
    images = processor.image_processor
    meta = images.plan(*size)
    cell = images.config.merge_size * images.config.patch_size
    return (meta.grid_hw[1] // images.config.merge_size, cell * size[0] / meta.resized_size[0],
            cell * size[1] / meta.resized_size[1])


def test_a_big_box_labels_the_cells_it_covers_with_its_words_tokens(processor: Processor) -> None:
    size = (320, 420)
    box = (40, 120, 200, 260)
    targets = media_word_targets(processor, size, [("Submit", box)])
    tokens = encode_text(processor.tokenizer, " Submit")
    grid_w, cw, ch = _cells(processor, size)
    rows = sorted(set(targets[:, 0].tolist()))
    centred = [i * grid_w + j for i in range(30) for j in range(grid_w)
               if box[0] <= (j + 0.5) * cw < box[2] and box[1] <= (i + 0.5) * ch < box[3]]
    assert rows and rows == centred, "a 160×140 px button labels exactly the cells whose centre it holds"
    for r in rows:
        assert targets[targets[:, 0] == r, 1].tolist() == tokens


def test_small_elements_still_label_a_token_and_overlaps_go_to_the_larger_cover(processor: Processor) -> None:
    size = (320, 420)
    link = (100, 200, 130, 212)  # a short link, far smaller than a cell
    assert len(set(media_word_targets(processor, size, [("nulla", link)])[:, 0].tolist())) >= 1
    assert media_word_targets(processor, size, []).shape == (0, 2)
    assert media_word_targets(processor, size, [("  ", link)]).shape == (0, 2)
    big, small = (0, 0, 320, 420), (100, 200, 130, 212)
    both = media_word_targets(processor, size, [("ONE", big), ("TWO", small)])
    one, two = encode_text(processor.tokenizer, " ONE"), encode_text(processor.tokenizer, " TWO")
    assert set(both[:, 1].tolist()) <= set(one) | set(two) and set(one) <= set(both[:, 1].tolist())
    two_cells = {int(r) for r, t in both.tolist() if t == two[0]}
    assert len(two_cells) == 1  # the small one holds no cell centre: it takes the cell it covers most


@pytest.mark.parametrize("seed", range(6))
def test_reading_samples_carry_targets_for_their_elements(processor: Processor, seed: int) -> None:
    sample = reading_sample(seed, processor)
    screen = reading_screen(seed)
    targets = sample["media_targets"]
    media = sum(num_media_tokens(tuple(g)) for g in sample["image_grid_hws"].tolist())
    assert len(targets) and int(targets[:, 0].max()) < media
    labels = {tuple(encode_text(processor.tokenizer, " " + lab)) for _, lab, _ in screen.elements}
    for r in set(targets[:, 0].tolist()):
        assert tuple(targets[targets[:, 0] == r, 1].tolist()) in labels


def test_collation_shifts_each_samples_targets_to_the_batch(processor: Processor) -> None:
    samples = [reading_sample(s, processor) for s in range(4)]
    counts = [sum(num_media_tokens(tuple(g)) for g in s["image_grid_hws"].tolist()) for s in samples]
    padded = collate_padded(samples, image_processor=processor.image_processor)
    offsets = [sum(counts[:k]) for k in range(len(samples))]
    expected = torch.cat([s["media_targets"] + torch.tensor([o, 0]) for s, o in zip(samples, offsets)])
    assert torch.equal(padded["media_targets"], expected)
    packed = collate_packed(samples, 4096, image_processor=processor.image_processor)
    assert torch.equal(packed["media_targets"], expected)  # one row keeps the order
    # samples without targets (trajectories, text) add none but still shift the later ones
    bare = {k: v for k, v in samples[0].items() if k != "media_targets"}
    mixed = collate_padded([bare, samples[1]], image_processor=processor.image_processor)
    assert torch.equal(mixed["media_targets"], samples[1]["media_targets"] + torch.tensor([counts[0], 0]))
    assert "media_targets" not in collate_padded([bare], image_processor=processor.image_processor)


def test_media_word_loss_is_the_mean_per_token_of_its_words_mean_ce() -> None:
    torch.manual_seed(0)
    media, table = torch.randn(5, 8, requires_grad=True), torch.randn(30, 8)
    targets = torch.tensor([[1, 3], [1, 4], [3, 7], [1, 9]])
    logp = F.log_softmax(media @ table.T, dim=-1)
    naive = (-(logp[1, 3] + logp[1, 4] + logp[1, 9]) / 3 - logp[3, 7]) / 2
    loss = media_word_loss(media, table, targets)
    assert torch.allclose(loss, naive)
    loss.backward()
    assert media.grad is not None and media.grad[[0, 2, 4]].abs().sum() == 0 and media.grad[1].abs().sum() > 0
    assert media_word_loss(media, table, torch.zeros(0, 2, dtype=torch.long)).item() == 0.0
    with pytest.raises(ValueError, match="media tokens"):
        media_word_loss(media, table, torch.tensor([[5, 0]]))
    with pytest.raises(ValueError, match="token ids"):
        media_word_loss(media, table, torch.tensor([[0, 30]]))


def test_lm_module_adds_the_media_word_loss_and_a_step_lowers_it(processor: Processor) -> None:
    torch.manual_seed(0)
    vlm = build_model(PRESETS["miniwob_tiny"]())
    batch = collate_padded([reading_sample(s, processor) for s in range(4)], image_processor=processor.image_processor)
    plain_total, count = LMModule(vlm)(batch)
    module = LMModule(vlm, media_word_weight=1.0)
    total, count2 = module(batch)
    assert count2 == count and total.item() > plain_total.item()
    no_targets = {k: v for k, v in batch.items() if k != "media_targets"}
    assert torch.allclose(module(no_targets)[0], plain_total)

    def words() -> torch.Tensor:
        t, n = module(batch)
        return t / n - LMModule(vlm)(batch)[0] / n

    before = words().item()
    opt = torch.optim.SGD(vlm.parameters(), lr=0.5)
    loss, n = module(batch)
    (loss / n).backward()
    opt.step()
    assert words().item() < before
    with pytest.raises(ValueError, match="media_word_weight"):
        LMModule(vlm, media_word_weight=-1.0)

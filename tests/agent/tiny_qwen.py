"""Build a tiny, randomly initialised Qwen2-VL (model + tokenizer + image processor) on disk.

No weights can be downloaded here, so tests of the transformers backend use this: a real
``Qwen2VLForConditionalGeneration`` with a few thousand parameters and a BPE tokenizer
trained on the spot, saved with ``save_pretrained`` and loaded back with the Auto classes.
"""

from __future__ import annotations

from pathlib import Path

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
            "<|image_pad|>", "<|video_pad|>"]


def build_tiny_qwen2vl(out: Path, seed: int = 0) -> Path:
    """Write a tiny Qwen2-VL checkpoint to ``out`` and return it."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2VLConfig, Qwen2VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = ["Thought: click the submit button\nAction: click(start_box='(120,45)')",
              "type(content='hello') hotkey(key='ctrl c') scroll down finished() wait()"] * 40
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                     additional_special_tokens=SPECIALS[1:])
    ids = {s: hf_tok.convert_tokens_to_ids(s) for s in SPECIALS}
    text = dict(vocab_size=len(hf_tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]})
    vision = dict(depth=2, embed_dim=32, hidden_size=64, num_heads=2, patch_size=14, spatial_merge_size=2,
                  temporal_patch_size=2)
    cfg = Qwen2VLConfig(text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
                        video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
                        vision_end_token_id=ids["<|vision_end|>"])
    for c in (cfg, cfg.text_config):
        c.bos_token_id = None
        c.eos_token_id = ids["<|im_end|>"]
        c.pad_token_id = ids["<|endoftext|>"]
    cfg.text_config.bos_token_id = None
    cfg.text_config.eos_token_id = ids["<|im_end|>"]
    cfg.text_config.pad_token_id = ids["<|endoftext|>"]
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(cfg).eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    hf_tok.save_pretrained(out)
    Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=112 * 112).save_pretrained(out)
    return out

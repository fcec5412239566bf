"""A Hugging Face transformers VLM from a local directory (Qwen2-VL family).

Covers Qwen2-VL, Qwen2.5-VL and the GUI models fine-tuned from them (UI-TARS, OpenCUA) when
their weights sit in a local directory: the tokenizer, the image processor and the model
are loaded with the Auto classes, offline. The prompt is built here in the family's ChatML
layout (``<|im_start|>role\\n...<|im_end|>``, each image as ``<|vision_start|>`` + one
``<|image_pad|>`` per merged patch + ``<|vision_end|>``) rather than through the model's
``Processor`` class, which in transformers 5 insists on a video processor (torchvision).

Generation is greedy or sampled; the reply carries the generated token ids and their
log-probabilities (for RL later).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agent.images import ResizeRule, resize_rgb
from agent.messages import build_messages
from agent.policy import PolicyError, PolicyInput, PolicyReply


@dataclass(frozen=True)
class HFPolicyConfig:
    """Settings of a local transformers VLM."""

    model_dir: str
    output_format: str = "uitars"
    resize: ResizeRule = field(default_factory=lambda: ResizeRule("smart", max_pixels=1280 * 28 * 28))
    history_images: int = 1
    max_new_tokens: int = 128
    temperature: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not os.path.isdir(self.model_dir):
            raise ValueError(f"model_dir {self.model_dir!r} is not a directory; give a saved transformers model directory")
        if self.max_new_tokens <= 0 or self.temperature < 0:
            raise ValueError(f"invalid generation settings: {self}")


class HFPolicy:
    """Runs a local Qwen2-VL-family model on the CPU (or the first GPU)."""

    name = "hf"
    privileged = False

    def __init__(self, config: HFPolicyConfig) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

        self.config = config
        self.model = os.path.basename(os.path.normpath(config.model_dir))
        self.output_format = config.output_format
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(config.model_dir)
        self.image_processor = AutoImageProcessor.from_pretrained(config.model_dir)
        self.net = AutoModelForImageTextToText.from_pretrained(config.model_dir).eval()
        self._merge = int(getattr(self.image_processor, "merge_size", 2))
        self._images: list[np.ndarray] = []

    def reset(self, instruction: str) -> None:
        """Nothing is kept between episodes."""

    def _image_part(self, image_HWC: np.ndarray) -> dict[str, Any]:
        w, h = image_HWC.shape[1], image_HWC.shape[0]
        self._images.append(resize_rgb(image_HWC, self.config.resize.target_size(w, h)))
        return {"type": "image"}

    def _prompt(self, messages: list[dict[str, Any]], grid_thw: Any) -> str:
        counts = iter((grid_thw.prod(-1) // (self._merge ** 2)).tolist()) if grid_thw is not None else iter(())
        parts = []
        for m in messages:
            content = m["content"]
            if isinstance(content, str):
                body = content
            else:
                body = "".join(
                    "<|vision_start|>" + "<|image_pad|>" * next(counts) + "<|vision_end|>" if c["type"] == "image" else c["text"]
                    for c in content
                )
            parts.append(f"<|im_start|>{m['role']}\n{body}<|im_end|>\n")
        return "".join(parts) + "<|im_start|>assistant\n"

    def act(self, inp: PolicyInput) -> PolicyReply:
        from agent.formats import ModelFrame, get_format

        size = inp.observation.size
        image_size = self.config.resize.target_size(*size)
        system = get_format(self.output_format).system_prompt(ModelFrame(size, image_size))
        self._images = []
        messages = build_messages(inp, system, self.config.history_images, self._image_part)
        t0 = time.perf_counter()
        try:
            return self._generate(messages, image_size, t0)
        except (RuntimeError, ValueError) as exc:
            raise PolicyError(f"local model {self.config.model_dir} failed: {exc}") from exc

    def _generate(self, messages: list[dict[str, Any]], image_size: tuple[int, int], t0: float) -> PolicyReply:
        torch = self._torch
        vision: dict[str, Any] = {}
        grid = None
        if self._images:
            vision = dict(self.image_processor(images=self._images, return_tensors="pt"))
            grid = vision["image_grid_thw"]
        ids = dict(self.tokenizer(self._prompt(messages, grid), return_tensors="pt"))
        image_token = getattr(self.net.config, "image_token_id", None)
        if self._images and image_token is not None:  # M-RoPE needs to know which tokens are image patches
            ids["mm_token_type_ids"] = (ids["input_ids"] == image_token).int()
        cfg = self.config
        torch.manual_seed(cfg.seed)
        with torch.no_grad():
            out = self.net.generate(
                **ids, **vision, max_new_tokens=cfg.max_new_tokens, do_sample=cfg.temperature > 0,
                temperature=cfg.temperature if cfg.temperature > 0 else None, top_p=None, top_k=None,
                output_scores=True, return_dict_in_generate=True,
            )
        new = out.sequences[0, ids["input_ids"].shape[1]:]
        logprobs = [float(torch.log_softmax(score[0].float(), -1)[tok]) for score, tok in zip(out.scores, new)]
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        usage = {"prompt_tokens": int(ids["input_ids"].shape[1]), "completion_tokens": int(new.shape[0])}
        return PolicyReply(text=text, image_size=image_size, token_ids=new.tolist(), logprobs=logprobs, usage=usage,
                           model_s=time.perf_counter() - t0)

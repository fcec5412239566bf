"""pixelpilot: the VLM (MoonViT encoder, pixel-shuffle projector, MoE decoder) and its processor.

Modules: ``config`` (typed configs and presets), ``vision`` (MoonViT), ``projector``,
``decoder`` (MoE LM + KV cache), ``modeling`` (HF model, loss, generation), ``context_cache``
(vision-embedding and prefix-KV reuse across agent steps), ``rope``, ``special_tokens``,
``processing`` (tokenizer, image and chat processor). Import submodules directly; this package
file imports nothing so that light users (e.g. ``special_tokens``) do not pull in torch.
"""

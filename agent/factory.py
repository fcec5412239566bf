"""Build environments and policies from CLI-style specs, through explicit registries.

``make_env("desktop", size=(1280, 800))`` / ``make_env("browser", ...)``;
``make_policy("http://127.0.0.1:8000/v1", model_name=..., output_format=...)`` picks the
OpenAI-compatible backend for URLs and a local backend for directories (the project's own
model when its ``config.json`` says ``pixelpilot_vl``, transformers otherwise).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

from agent.images import ResizeRule
from agent.policy import Policy
from envs.base import Env


def _desktop(size: tuple[int, int] = (1280, 800), max_steps: int = 50, **kw: Any) -> Env:
    from envs.desktop.env import DesktopConfig, DesktopEnv

    return DesktopEnv(DesktopConfig(size=size, max_steps=max_steps, **kw))


def _browser(size: tuple[int, int] = (1280, 800), max_steps: int = 50, **kw: Any) -> Env:
    from envs.browser.env import BrowserEnv
    from envs.browser.launch import BrowserConfig

    return BrowserEnv(BrowserConfig(width=size[0], height=size[1], **kw), max_steps=max_steps)


def _docker(size: tuple[int, int] = (1280, 800), max_steps: int = 50, **kw: Any) -> Env:
    from envs.docker.env import DockerConfig, DockerEnv

    return DockerEnv(DockerConfig(size=size, max_steps=max_steps, **kw))


def _vm(size: tuple[int, int] = (1280, 800), max_steps: int = 50, **kw: Any) -> Env:
    from envs.vm.env import VMConfig, VMEnv

    return VMEnv(VMConfig(size=size, max_steps=max_steps, **kw))


ENV_FACTORIES: dict[str, Callable[..., Env]] = {"desktop": _desktop, "browser": _browser, "docker": _docker,
                                                "vm": _vm}


def make_env(kind: str, **kwargs: Any) -> Env:
    """An environment of ``kind`` (see ``ENV_FACTORIES``) built with ``kwargs``."""
    try:
        factory = ENV_FACTORIES[kind]
    except KeyError:
        raise ValueError(f"unknown env {kind!r}; choose one of {sorted(ENV_FACTORIES)}") from None
    return factory(**kwargs)


def local_model_kind(path: str) -> str:
    """``pixelpilot`` for the project's model directories, ``hf`` for other transformers ones."""
    cfg = os.path.join(path, "config.json")
    if not os.path.isfile(cfg):
        raise ValueError(f"{path!r} has no config.json: give a saved model directory or an http(s) URL of an "
                         "OpenAI-compatible server")
    with open(cfg, encoding="utf-8") as f:
        model_type = json.load(f).get("model_type", "")
    return "pixelpilot" if model_type == "pixelpilot_vl" else "hf"


#: File of a model directory that says how the agent must run that model (see ``agent_settings``).
AGENT_SETTINGS_FILE = "agent.json"
_SETTINGS_KEYS = {"output_format": str, "history_images": int, "max_tokens": int}


def agent_settings(model_dir: str) -> dict[str, Any]:
    """The run settings a model directory was trained for (``agent.json``), {} when it has none.

    Written by training pipelines next to the weights, e.g. ``{"output_format": "native-compact",
    "history_images": 0, "max_tokens": 48}``: the prompt layout and budget the model learned.
    Keys: ``output_format``, ``history_images``, ``max_tokens``.
    """
    path = os.path.join(model_dir, AGENT_SETTINGS_FILE)
    if not os.path.isfile(path):
        _warn_if_trained_for_other_settings(model_dir)
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); fix or delete it") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object, e.g. {{\"output_format\": \"native\"}}")
    for key, value in data.items():
        kind = _SETTINGS_KEYS.get(key)
        if kind is None:
            raise ValueError(f"{path}: unknown key {key!r}; known keys: {', '.join(_SETTINGS_KEYS)}")
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(f"{path}: {key} must be {'a string' if kind is str else 'an integer'}, got {value!r}")
    return data


def _warn_if_trained_for_other_settings(model_dir: str) -> None:
    """A training run's output without ``agent.json`` whose ``train_config.json`` names agent
    settings (copied by hand, or written before stages saved it): say so on stderr, since the
    generic defaults give such a model a prompt it was not trained on (its replies will not parse)."""
    config = os.path.join(model_dir, "train_config.json")
    try:
        with open(config, encoding="utf-8") as f:
            trained = json.load(f).get("agent")
    except (OSError, ValueError, AttributeError):
        return
    if isinstance(trained, dict) and trained:
        print(f"warning: {model_dir} has no {AGENT_SETTINGS_FILE} but was trained for {json.dumps(trained)} "
              f"(train_config.json); running it with the generic settings instead. Write that object to "
              f"{os.path.join(model_dir, AGENT_SETTINGS_FILE)} to run it as trained.",
              file=sys.stderr)


def make_policy(model: str, *, model_name: str | None = None, output_format: str | None = None,
                resize: str | None = None, history_images: int | None = None, max_tokens: int | None = None,
                temperature: float = 0.0) -> Policy:
    """A policy for ``model``: an http(s) URL (OpenAI-compatible server) or a local directory.

    Settings left as None come from the model directory's ``agent.json`` (``agent_settings``),
    else the defaults: 3 history screenshots, 512 tokens.
    """
    rule = ResizeRule.parse(resize) if resize else None
    if not model.startswith(("http://", "https://")) and os.path.isdir(model):
        saved = agent_settings(model)
        output_format = output_format or saved.get("output_format")
        history_images = saved.get("history_images") if history_images is None else history_images
        max_tokens = saved.get("max_tokens") if max_tokens is None else max_tokens
    history_images = 3 if history_images is None else history_images
    max_tokens = 512 if max_tokens is None else max_tokens
    if model.startswith(("http://", "https://")):
        from agent.policies.openai_policy import OpenAIPolicy, OpenAIPolicyConfig

        return OpenAIPolicy(OpenAIPolicyConfig(
            base_url=model, model=model_name or "pixelpilot", output_format=output_format or "native",
            resize=rule or ResizeRule(), history_images=history_images, max_tokens=max_tokens,
            temperature=temperature))
    kind = local_model_kind(model)
    if kind == "hf":
        from agent.policies.hf_policy import HFPolicy, HFPolicyConfig

        kwargs: dict[str, Any] = {"output_format": output_format or "uitars", "history_images": history_images,
                                  "max_new_tokens": max_tokens, "temperature": temperature}
        if rule is not None:
            kwargs["resize"] = rule
        return HFPolicy(HFPolicyConfig(model, **kwargs))
    from agent.policies.local_model import LocalModelPolicy, LocalModelPolicyConfig

    return LocalModelPolicy(LocalModelPolicyConfig(model, output_format=output_format or "native",
                                                   history_images=history_images, max_new_tokens=max_tokens,
                                                   temperature=temperature))

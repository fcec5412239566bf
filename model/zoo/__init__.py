"""Model directories shipped inside the package (the embedded defaults).

``miniwob-tiny`` (``model/zoo/miniwob-tiny/``) is the project's own small VLM trained by
``pixelpilot train --recipe miniwob-tiny`` (``training.miniwob_tiny``): weights
(``model.safetensors``), ``config.json``, the processor files, ``agent.json`` (how the agent runs
it) and ``training.json`` (what produced it and what it scored). ``make demo`` runs it.
"""

from __future__ import annotations

from pathlib import Path

ZOO_DIR = Path(__file__).resolve().parent
#: The model ``pixelpilot demo`` runs when no ``--model`` is given.
DEFAULT_MODEL = "miniwob-tiny"


class ModelNotShippedError(FileNotFoundError):
    """The named model is not in this checkout; the message says how to build it."""


def zoo_models() -> list[str]:
    """Names of the shipped model directories present in this checkout."""
    return sorted(p.name for p in ZOO_DIR.iterdir() if (p / "config.json").is_file())


def model_dir(name: str = DEFAULT_MODEL) -> Path:
    """The directory of shipped model ``name`` (``from_pretrained`` / ``make_policy`` accept it)."""
    path = ZOO_DIR / name
    if not (path / "config.json").is_file():
        have = ", ".join(zoo_models()) or "none"
        raise ModelNotShippedError(
            f"no shipped model {name!r} in {ZOO_DIR} (present: {have}); build it with "
            f"pixelpilot train --recipe {name} --out runs/{name} and copy runs/{name}/model to {path}")
    return path


__all__ = ["DEFAULT_MODEL", "ModelNotShippedError", "ZOO_DIR", "model_dir", "zoo_models"]

"""The project's packages import one way (DESIGN.md): checked on the source, statically."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("envs", "model", "trajectories", "agent", "training")
ALLOWED: dict[str, set[str]] = {
    "envs": set(),
    "model": set(),
    "trajectories": {"envs"},
    "agent": {"envs", "model", "trajectories"},
    "training": {"model", "trajectories", "agent", "envs"},
}
# Modules that must not appear anywhere in a package (STYLE.md: envs/ does not import torch).
FORBIDDEN: dict[str, set[str]] = {"envs": {"torch", "transformers"}}


# The one place above every package: the CLI dispatcher loads each sub-command module by
# name (``training.cli`` among them). Library code of ``agent`` never imports ``training``.
DISPATCHER = "agent/cli.py"


def _imports(path: Path) -> set[str]:
    """Top-level packages ``path`` imports, statically or through importlib with a literal name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.add(node.args[0].value.split(".")[0])
    return found


def _dispatched(path: Path) -> set[str]:
    """Packages named in the dispatcher's COMMAND_MODULES registry."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            if getattr(target, "id", "") == "COMMAND_MODULES" and isinstance(node.value, ast.Tuple):
                return {e.value.split(".")[0] for e in node.value.elts if isinstance(e, ast.Constant)}
    return set()


def test_packages_exist() -> None:
    for pkg in PACKAGES:
        assert (ROOT / pkg / "__init__.py").is_file(), f"package {pkg} is missing"


def test_imports_run_one_way() -> None:
    violations = []
    checked = 0
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            checked += 1
            if str(path.relative_to(ROOT)) == DISPATCHER:
                continue  # checked in test_the_dispatcher_only_loads_command_modules
            for mod in _imports(path):
                if mod in PACKAGES and mod != pkg and mod not in ALLOWED[pkg]:
                    violations.append(f"{path.relative_to(ROOT)} imports {mod}")
                if mod in FORBIDDEN.get(pkg, set()):
                    violations.append(f"{path.relative_to(ROOT)} imports {mod} (forbidden in {pkg})")
    assert checked > 5
    assert not violations, "import direction broken:\n" + "\n".join(violations)


def test_the_dispatcher_only_loads_command_modules() -> None:
    path = ROOT / DISPATCHER
    static = _imports(path) & set(PACKAGES)
    assert static <= {"agent", "envs"}, f"the dispatcher imports {static} statically"
    assert _dispatched(path) <= set(PACKAGES) and "training" in _dispatched(path)


def test_checker_detects_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import agent.loop\nfrom training import x\nimportlib.import_module('trajectories.store')\n")
    assert _imports(bad) == {"agent", "training", "trajectories"}


def test_training_cli_names_every_recipe() -> None:
    pytest.importorskip("torch")
    from training.cli import RECIPE_NAMES
    from training.recipes import RECIPES

    assert RECIPE_NAMES == tuple(sorted(RECIPES))

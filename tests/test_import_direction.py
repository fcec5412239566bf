"""The project's packages import one way (DESIGN.md): checked on the source, statically."""

from __future__ import annotations

import ast
from pathlib import Path

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


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_packages_exist() -> None:
    for pkg in PACKAGES:
        assert (ROOT / pkg / "__init__.py").is_file(), f"package {pkg} is missing"


def test_imports_run_one_way() -> None:
    violations = []
    checked = 0
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            checked += 1
            for mod in _imports(path):
                if mod in PACKAGES and mod != pkg and mod not in ALLOWED[pkg]:
                    violations.append(f"{path.relative_to(ROOT)} imports {mod}")
                if mod in FORBIDDEN.get(pkg, set()):
                    violations.append(f"{path.relative_to(ROOT)} imports {mod} (forbidden in {pkg})")
    assert checked > 5
    assert not violations, "import direction broken:\n" + "\n".join(violations)


def test_checker_detects_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import agent.loop\nfrom training import x\n")
    assert _imports(bad) == {"agent", "training"}

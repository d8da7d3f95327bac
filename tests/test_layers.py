"""Dependencies point inward: adapters and inference use core; core uses neither;
an adapter never imports another adapter."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "sluicegate"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules_under(folder: str) -> dict[Path, set[str]]:
    return {p: imported_modules(p) for p in (PACKAGE / folder).rglob("*.py")}


def test_core_imports_neither_adapters_nor_inference() -> None:
    for path, imports in modules_under("core").items():
        bad = {m for m in imports if m.startswith(("sluicegate.adapters", "sluicegate.inference"))}
        assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"


def test_inference_does_not_import_adapters() -> None:
    for path, imports in modules_under("inference").items():
        bad = {m for m in imports if m.startswith("sluicegate.adapters")}
        assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"


def test_adapters_import_only_themselves_and_core() -> None:
    for adapter in (p for p in (PACKAGE / "adapters").iterdir() if p.is_dir()):
        if adapter.name.startswith("__"):
            continue
        for path in adapter.rglob("*.py"):
            for module in imported_modules(path):
                if not module.startswith("sluicegate."):
                    continue
                allowed = module.startswith(
                    (f"sluicegate.adapters.{adapter.name}", "sluicegate.core")
                )
                assert allowed, f"{path.relative_to(REPO)} imports {module}"

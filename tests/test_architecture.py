"""Structure rules the code base keeps: no import cycles in bench/, no oversized modules.

Every import of a bench.* module counts, wherever it sits: a function-level import that only
dodges an import-time cycle still ties the two modules into one unit that cannot be understood,
tested or replaced apart.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def bench_modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted((ROOT / "bench").rglob("*.py"))}


def imported_bench_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """bench.* modules that ``name`` imports anywhere in its source (module- or function-level)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from bench import trainer` imports the module bench.trainer; `from bench.x import f` imports bench.x.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        for target in targets:
            # `import bench.a.b` names bench.a.b; keep the longest known prefix.
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = bench_modules()
    known = set(modules)
    return {name: imported_bench_modules(name, path, known) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _edges_within(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    members = set(component)
    return [f"{a} -> {b}" for a in component for b in sorted(graph[a] & members)]


def test_the_import_graph_parser_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text("import bench.a\nfrom bench import b\nfrom . import c\n"
                      "def f():\n    from bench.d import thing\n")
    known = {"bench", "bench.a", "bench.b", "bench.c", "bench.d", "bench.mod"}
    assert imported_bench_modules("bench.mod", source, known) == {"bench.a", "bench.b", "bench.c", "bench.d"}


def test_cycle_finder() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert find_cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycles_in_bench() -> None:
    graph = import_graph()
    cycles = find_cycles(graph)
    detail = "; ".join(", ".join(_edges_within(component, graph)) for component in cycles)
    assert not cycles, f"import cycles in bench/ (function-level imports count): {detail}"


def test_no_module_over_400_lines() -> None:
    too_long = []
    for folder in ("bench", "plugins"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > MAX_LINES:
                too_long.append(f"{path.relative_to(ROOT)} ({lines})")
    assert not too_long, f"modules over {MAX_LINES} lines: {', '.join(too_long)}"

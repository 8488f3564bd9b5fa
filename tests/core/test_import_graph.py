"""The package has no import cycles: module-level imports between t2s_bench modules (`from pkg
import x` is an edge to pkg's __init__, and to pkg.x when that is a module) form a directed acyclic
graph. Imports inside functions are deliberate late bindings and are not edges."""

import ast
from pathlib import Path

import t2s_bench

ROOT = Path(t2s_bench.__file__).parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def top_level_imports(path: Path, name: str, modules: set[str] = frozenset()) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in tree.body:  # module level only (also inside top-level try/if blocks)
        stack = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, ast.Import):
                out.update(a.name for a in n.names)
            elif isinstance(n, ast.ImportFrom):
                base = n.module or ""
                if n.level:
                    parent = package.split(".")[: len(package.split(".")) - n.level + 1]
                    base = ".".join(parent + ([base] if base else []))
                for a in n.names:  # a submodule, else a name defined by the package's __init__
                    out.add(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base)
            elif isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test):
                continue  # for type checkers only
            elif isinstance(n, (ast.Try, ast.If)):
                stack.extend(n.body + n.orelse + getattr(n, "handlers", []) + getattr(n, "finalbody", []))
            elif isinstance(n, ast.ExceptHandler):
                stack.extend(n.body)
    return out


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        edges = {m for m in top_level_imports(path, name, set(files)) if m in files}
        graph[name] = edges - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_graph_is_read():
    graph = import_graph()
    assert "t2s_bench.runner" in graph and "t2s_bench.rundir" in graph["t2s_bench.runner"]


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_a_cycle_is_found():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]

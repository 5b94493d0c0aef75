"""The package's imports flow one way: no module reaches back to one that imports it, and no
module imports a package drawn above its own in docs/architecture.md's picture.

Imports hidden inside functions count too: they only defer a cycle to run time, where it
turns into a half-initialised module the first time the function is called from the other
side. The graph is read from the source with ``ast`` (nothing is imported), one node per
module; ``from pkg import name`` points at ``pkg.name`` when that is a module, else at ``pkg``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "rnn_jax"
ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"
_BOX = re.compile("[─┐│┘└┌]")


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    modules = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _targets(module: str, path: Path, node: ast.Import | ast.ImportFrom, modules: dict[str, Path]) -> list[str]:
    """The package modules one import statement loads (its deepest known module per name)."""
    if isinstance(node, ast.Import):
        found = []
        for alias in node.names:
            name = alias.name
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.append(name)
        return found
    base = node.module or ""
    if node.level:
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    found = []
    for alias in node.names:
        if f"{base}.{alias.name}" in modules:
            found.append(f"{base}.{alias.name}")
        elif base in modules:
            found.append(base)
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere in its body (functions included)."""
    modules = module_files(package)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[name].update(t for t in _targets(name, path, node, modules) if t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_the_package_has_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles (module-level or inside functions):\n" + "\n".join(
        " <-> ".join(component) for component in found)


def test_the_walker_sees_cycles_hidden_in_functions(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("def late():\n    from .. import a\n    return a\n")
    (package / "c.py").write_text("import pkg.a\n")
    assert cycles(import_graph(package)) == [["pkg.a", "pkg.sub.b"]]


def layers_from_doc(text: str) -> dict[str, int]:
    """Top-level unit (``api``, ``data``, ``softmax`` ...) -> its row in the picture (0 = top).

    The picture is the first fenced block; a row names its units as ``rnn_jax.a · b · c`` before
    the description column. Lines that name no ``rnn_jax.`` unit (arrows, the JAX-free line,
    description continuations, the command-line row) are not rows."""
    block = text.split("```")[1]
    rows: dict[str, int] = {}
    for line in block.splitlines():
        names = re.split(r"\s{3,}", _BOX.sub(" ", line).strip())[0]
        if not names.startswith("rnn_jax."):
            continue
        row = len(set(rows.values()))
        for name in names.split("·"):
            unit = name.strip().removeprefix("rnn_jax.")
            assert re.fullmatch(r"\w+", unit), f"cannot read the unit {name!r} in: {line!r}"
            rows[unit] = row
    return rows


def unit_of(module: str) -> str:
    """``rnn_jax.data.streams`` -> ``data``; the package root itself -> ``rnn_jax``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def upward_imports(graph: dict[str, set[str]], rows: dict[str, int]) -> list[str]:
    """Imports that point up the picture (to a row above the importer's), and units with no row.

    The package root (``rnn_jax/__init__.py``: the version only) may be imported from anywhere."""
    found = []
    for module, targets in sorted(graph.items()):
        unit = unit_of(module)
        if unit == "rnn_jax":
            continue
        if unit not in rows:
            found.append(f"{module}: its package '{unit}' has no row in the picture")
            continue
        for target in sorted(targets):
            other = unit_of(target)
            if other in (unit, "rnn_jax"):
                continue
            if other not in rows:
                found.append(f"{module} -> {target}: '{other}' has no row in the picture")
            elif rows[other] < rows[unit]:
                found.append(f"{module} -> {target}: up from row {rows[unit]} ({unit}) to row {rows[other]} ({other})")
    return found


def test_imports_follow_the_documented_layers():
    rows = layers_from_doc(ARCHITECTURE.read_text(encoding="utf-8"))
    assert {"api", "export", "lineage", "distill", "data", "config", "models", "kernels", "live", "runtime",
            "hands", "preprocess", "softmax", "errors"} <= set(rows), sorted(rows)
    # the JAX-free half sits below every JAX package
    assert max(rows[u] for u in ("api", "export", "lineage", "distill", "data", "models", "kernels")) < min(
        rows[u] for u in ("live", "runtime", "hands", "preprocess", "softmax"))
    found = upward_imports(import_graph(), rows)
    assert not found, "imports against docs/architecture.md's one-way picture:\n" + "\n".join(found)


def test_an_upward_import_without_a_cycle_is_refused(tmp_path):
    picture = ("```\n   rnn_jax.top                   the top\n      │\n"
               "   rnn_jax.mid · side            the middle\n"
               "                                 (a description line)\n"
               "   rnn_jax.low                   the bottom\n```\n")
    rows = layers_from_doc(picture)
    assert rows == {"top": 0, "mid": 1, "side": 1, "low": 2}
    package = tmp_path / "pkg"
    package.mkdir()
    for name in ("top", "mid", "side", "low", "new"):
        (package / f"{name}.py").write_text("")
    (package / "top.py").write_text("import pkg.mid\n")  # down: fine
    (package / "side.py").write_text("from pkg import mid\n")  # same row: fine
    (package / "low.py").write_text("def late():\n    from pkg import top\n")  # up, hidden in a function
    graph = {m.replace("pkg.", "rnn_jax."): {t.replace("pkg.", "rnn_jax.") for t in ts}
             for m, ts in import_graph(package).items() if m != "pkg"}
    assert cycles(graph) == []  # no cycle, yet ...
    found = upward_imports(graph, rows)
    assert found == ["rnn_jax.low -> rnn_jax.top: up from row 2 (low) to row 0 (top)",
                     "rnn_jax.new: its package 'new' has no row in the picture"]

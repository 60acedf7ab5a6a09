"""What importing mtrec costs, and that its modules import without a cycle.

- `import mtrec` (the library) loads neither pydantic, yaml nor matplotlib:
  those belong to the experiment harness (`mtrec.experiments`) and to
  plotting, loaded on first use.
- No module of mtrec imports, directly or through others, a module that
  imports it back. The graph is read from the source (module-level
  imports, and the lazy ones of a package's `__getattr__`, which are part
  of what `mtrec.x` can load), so a cycle fails here before it fails at
  import time in some order of imports.
"""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mtrec"
HEAVY = ("pydantic", "yaml", "matplotlib")


# --------------------------------------------------------------------------
# import mtrec stays light
# --------------------------------------------------------------------------
# A meta-path finder that refuses the heavy packages and records which
# module asked. Keras 3 itself imports matplotlib when it is installed
# (keras.src.visualization, guarded by try/except ImportError), so
# `sys.modules` alone cannot tell whether mtrec asked for it.
PROBE = r"""
import importlib.abc, json, sys
HEAVY = {heavy!r}
asked = []

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in HEAVY:
            return None
        frame = sys._getframe(1)
        while frame is not None and frame.f_globals.get("__name__", "").startswith(
                ("importlib", "_frozen_importlib")):
            frame = frame.f_back
        asked.append([name, frame.f_globals.get("__name__") if frame else None])
        raise ImportError(f"{{name}} refused by the test")

sys.meta_path.insert(0, Refuse())
{statement}
print("PROBE" + json.dumps({{"asked": asked,
                             "loaded": [m for m in HEAVY if m in sys.modules]}}))
"""


def probe(statement):
    """`{"asked": [[package, importing module]], "loaded": [...]}` after
    running `statement` in a fresh interpreter with the heavy packages
    refused."""
    code = PROBE.format(heavy=HEAVY, statement=statement)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, env=env, timeout=300, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("PROBE")]
    assert result.returncode == 0 and lines, result.stderr[-3000:]
    return json.loads(lines[-1][len("PROBE"):])


def mtrec_askers(report):
    return sorted({(package, module) for package, module in report["asked"]
                   if module and module.split(".")[0] == "mtrec"})


def test_import_mtrec_loads_no_harness_or_plotting_package():
    report = probe("import mtrec, mtrec.cli")
    assert mtrec_askers(report) == []
    assert report["loaded"] == []


def test_import_mtrec_without_refusals_loads_no_pydantic_or_yaml():
    code = ("import sys, mtrec; "
            "print('LOADED', [m for m in ('pydantic', 'yaml') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
                                           "PYTHONPATH": str(ROOT)},
                            timeout=300, check=False)
    assert "LOADED []" in result.stdout, result.stderr[-3000:]


def test_the_probe_sees_the_harness_asking():
    # The harness does load pydantic and yaml: the probe must say who asked.
    report = probe("""
try:
    import mtrec.experiments
except ImportError:
    pass
""")
    askers = mtrec_askers(report)
    assert ("yaml", "mtrec.experiments.config") in askers or \
        ("pydantic", "mtrec.experiments.config") in askers, report


# --------------------------------------------------------------------------
# no import cycle
# --------------------------------------------------------------------------
def module_names(package_dir):
    """`{module name: path}` of every module under a package folder."""
    names = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _import_statements(tree):
    """Import nodes run when the module is imported: module level (inside
    if/try/with/class bodies too) and inside a module-level `__getattr__`
    (PEP 562 lazy attributes); not inside other functions."""
    pending = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
            yield from (n for n in ast.walk(node)
                        if isinstance(n, (ast.Import, ast.ImportFrom)))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        else:
            pending.extend(ast.iter_child_nodes(node))


def import_graph(package_dir):
    """`{module: sorted modules of the package it imports}`.

    `import a.b.c` is an edge to `a.b.c`; `from a.b import x` is an edge
    to `a.b.x` when that is a module, else to `a.b` (whose namespace must
    then be complete). Relative imports are resolved. The implicit import
    of parent packages is not an edge: a parent being initialised is
    already in `sys.modules`, so it cannot deadlock its children.
    """
    modules = module_names(package_dir)
    root = package_dir.name
    graph = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        edges = set()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _import_statements(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = name.split(".")
                    anchor = anchor[:len(anchor) - node.level + (1 if is_package else 0)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules
                           else base for alias in node.names]
            edges.update(t for t in targets if t.split(".")[0] == root and t in modules
                         and t != name)
        graph[name] = sorted(edges)
    return graph


def find_cycle(graph):
    """One cycle of a directed graph as `[a, b, ..., a]`, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_find_cycle_on_small_graphs():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": []}) is None
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["a"]}) == ["a", "a"]
    assert find_cycle({"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []}) is None


def test_import_graph_of_a_small_package(tmp_path):
    """The edges the graph reads, on a package with the cycle runner.py had:
    the package lazily loads its harness, which imports the package back."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        "from pkg import sub\n"
        "def __getattr__(name):\n"
        "    import pkg.harness\n"
        "    return pkg.harness\n")
    (pkg / "sub" / "__init__.py").write_text("from .leaf import value\n")
    (pkg / "sub" / "leaf.py").write_text(
        "import os\n"
        "def later():\n"
        "    import pkg.harness  # at call time only: not an edge\n"
        "value = 1\n")
    (pkg / "harness.py").write_text("import pkg\nfrom pkg.sub import leaf\n")
    graph = import_graph(pkg)
    assert graph == {"pkg": ["pkg.harness", "pkg.sub"], "pkg.harness": ["pkg", "pkg.sub.leaf"],
                     "pkg.sub": ["pkg.sub.leaf"], "pkg.sub.leaf": []}
    assert find_cycle(graph) == ["pkg", "pkg.harness", "pkg"]
    (pkg / "harness.py").write_text("from pkg.sub import leaf\n")
    assert find_cycle(import_graph(pkg)) is None


def test_mtrec_has_no_import_cycle():
    graph = import_graph(PACKAGE)
    assert len(graph) > 40 and "mtrec.experiments.runner" in graph
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("module", ["mtrec.experiments.runner", "mtrec.experiments.record",
                                    "mtrec.export.file_scoring"])
def test_the_harness_imports_submodules_not_the_package_root(module):
    assert "mtrec" not in import_graph(PACKAGE)[module]

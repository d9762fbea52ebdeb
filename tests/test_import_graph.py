"""The import graph of the four packages, read from the source with ``ast`` (issue 17, item 3).

Why a test: the layering (``venues`` and ``utilities`` use ``fixgw``; ``utilities`` uses
``replication``; only the CLI in ``fixgw/cli/`` wires everything) and the absence of import
cycles were written down but not checked, and both had drifted (engine <-> application <->
session, dictionary <-> plans, the CLI's modules importing each other's private names).

What counts as an import: every ``import`` and ``from ... import`` anywhere in a module, at
module level, inside functions (a lazy import that works around a cycle is still the cycle)
and under ``if TYPE_CHECKING:`` (a type-only dependency is still a dependency of the design).
``from pkg import name`` is an edge to the module ``pkg.name`` when that is a module of ours,
else to ``pkg``. Importing ``a.b`` does not add an edge to the package ``a``: the rules are
about what a module asks for, not what Python runs on the way. A private name is one starting
with a single underscore; using one from another module is either ``from x import _y``,
``import x._y`` or ``x._y`` where ``x`` is a name bound to one of our modules.

Today's known violations are listed in the ``KNOWN_*`` allow-lists below, each with the
issue that removes it; a violation not listed fails, and so does a listed one that no longer
exists (so the lists only shrink). Other branches for issue 17 are removing them now; the
lead empties the lists when merging.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("fixgw", "replication", "venues", "utilities")

# Which of our packages each package may import (besides itself). ``fixgw/cli`` is the wiring
# and may import all of them; ``fixgw`` outside the CLI is the FIX engine and imports none.
# ``utilities`` -> ``venues``: none exists today (the street utility talks FIX to venues;
# utilities/cluster_config.py only names a venue's kind, port and file, which the CLI loads with
# venues.venue_config), so it is not allowed; a utility that needs the FIX order vocabulary
# gets it from ``fixgw`` (issue 17, item 1).
ALLOWED: dict[str, frozenset[str]] = {
    "fixgw": frozenset(),
    "fixgw.cli": frozenset({"replication", "venues", "utilities"}),
    "replication": frozenset({"fixgw"}),
    "venues": frozenset({"fixgw"}),
    "utilities": frozenset({"fixgw", "replication"}),
}

# --- Allow-lists of today's violations (issue 17). Each entry must still exist. ---------------

# (importing module, imported package): layering rule broken. None today.
KNOWN_LAYERING: frozenset[tuple[str, str]] = frozenset()

# Strongly connected components of the module graph, each as the set of its modules.
KNOWN_CYCLES: frozenset[frozenset[str]] = frozenset()

# (importing module, "imported.module._name"): another module's private name used.
KNOWN_PRIVATE: frozenset[tuple[str, str]] = frozenset()


@dataclass
class Graph:
    """Modules of ours, their import edges, and the private names each uses from others."""

    modules: dict[str, Path] = field(default_factory=dict)
    edges: dict[str, set[str]] = field(default_factory=dict)
    private: set[tuple[str, str]] = field(default_factory=set)


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve_relative(name: str, is_package: bool, level: int, target: str | None) -> str:
    base = name.split(".") if is_package else name.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _bound_module(value: ast.expr, aliases: dict[str, str], ours: set[str]) -> str | None:
    """The module of ours that ``value`` (``m`` or ``pkg.m``) names, if it names one."""
    if isinstance(value, ast.Name):
        return aliases.get(value.id)
    if isinstance(value, ast.Attribute):
        parent = _bound_module(value.value, aliases, ours)
        if parent is not None and f"{parent}.{value.attr}" in ours:
            return f"{parent}.{value.attr}"
    return None


def build_graph(root: Path, packages: Iterable[str]) -> Graph:
    """Parse every ``.py`` file of ``packages`` under ``root`` (no module is imported)."""
    graph = Graph()
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            graph.modules[module_name(root, path)] = path
    ours = set(graph.modules)

    def of_ours(dotted: str) -> str | None:
        """The longest prefix of ``dotted`` that is one of our modules."""
        parts = dotted.split(".")
        for n in range(len(parts), 0, -1):
            cand = ".".join(parts[:n])
            if cand in ours:
                return cand
        return None

    for name, path in graph.modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges: set[str] = set()
        aliases: dict[str, str] = {}  # local name -> our module it is bound to
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = of_ours(alias.name)
                    if target is None:
                        continue
                    edges.add(target)
                    if any(_is_private(p) for p in alias.name.split(".")):
                        graph.private.add((name, alias.name))
                    if alias.asname:
                        aliases[alias.asname] = target
                    else:
                        aliases[alias.name.split(".")[0]] = alias.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom):
                source = (
                    _resolve_relative(name, is_package, node.level, node.module)
                    if node.level
                    else (node.module or "")
                )
                base = of_ours(source)
                if base is None:
                    continue
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    if sub in ours:
                        edges.add(sub)
                        aliases[alias.asname or alias.name] = sub
                    else:
                        edges.add(base)
                        if _is_private(alias.name):
                            graph.private.add((name, f"{source}.{alias.name}"))
            elif isinstance(node, ast.Attribute) and _is_private(node.attr):
                target = _bound_module(node.value, aliases, ours)
                if target is not None and target != name:
                    graph.private.add((name, f"{target}.{node.attr}"))
        edges.discard(name)
        graph.edges[name] = edges
    return graph


def cycles(graph: Graph) -> set[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: set[frozenset[str]] = set()
    counter = 0
    for start in sorted(graph.edges):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph.edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.add(frozenset(component))
    return found


def area(module: str) -> str:
    """The layering area of a module: ``fixgw.cli`` or its top-level package."""
    if module == "fixgw.cli" or module.startswith("fixgw.cli."):
        return "fixgw.cli"
    return module.split(".")[0]


def layering_violations(graph: Graph) -> set[tuple[str, str]]:
    bad: set[tuple[str, str]] = set()
    for module, targets in graph.edges.items():
        mine = area(module)
        for target in targets:
            pkg = target.split(".")[0]
            if pkg == module.split(".")[0]:
                continue  # within one package (the CLI importing fixgw is fine too)
            if pkg not in ALLOWED[mine]:
                bad.add((module, pkg))
    return bad


def _report(kind: str, unexpected: set[object], gone: set[object]) -> str:
    lines = [f"{kind}:"]
    lines += [f"  new (fix it, do not list it): {v!r}" for v in sorted(map(repr, unexpected))]
    lines += [f"  fixed (remove it from the allow-list): {v!r}" for v in sorted(map(repr, gone))]
    return "\n".join(lines)


def _check(kind: str, actual: set[object], known: frozenset[object]) -> None:
    unexpected = actual - set(known)
    gone = set(known) - actual
    assert not unexpected and not gone, _report(kind, unexpected, gone)


GRAPH = build_graph(ROOT, PACKAGES)


def test_every_package_is_parsed() -> None:
    for pkg in PACKAGES:
        assert pkg in GRAPH.modules, pkg
    assert len(GRAPH.modules) > 60
    assert "utilities.node_process" in GRAPH.modules


def test_packages_import_only_what_their_layer_allows() -> None:
    # venues -> fixgw only; utilities -> fixgw, replication; replication -> no utilities/venues;
    # fixgw outside the CLI -> none of the others; only fixgw/cli imports utilities.
    _check("layering", set(layering_violations(GRAPH)), KNOWN_LAYERING)


def test_nothing_but_the_cli_imports_utilities() -> None:
    importers = {
        module
        for module, targets in GRAPH.edges.items()
        if area(module) not in ("fixgw.cli", "utilities")
        and any(t.split(".")[0] == "utilities" for t in targets)
    }
    assert importers == set(), importers


def test_no_import_cycles_between_modules() -> None:
    _check("import cycles", set(cycles(GRAPH)), KNOWN_CYCLES)


def test_no_module_uses_another_modules_private_names() -> None:
    _check("private names", set(GRAPH.private), KNOWN_PRIVATE)


# --- The checker itself, on tiny synthetic packages. --------------------------------------------


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_checker_flags_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg.b import helper\n",
        "pkg/b.py": "def helper() -> None:\n    from pkg import a\n",
        "pkg/c.py": "import pkg.a\n",
    })
    graph = build_graph(tmp_path, ["pkg"])
    assert graph.edges["pkg.a"] == {"pkg.b"}
    assert graph.edges["pkg.b"] == {"pkg.a"}
    assert cycles(graph) == {frozenset({"pkg.a", "pkg.b"})}


def test_checker_flags_a_cycle_through_relative_imports(tmp_path: Path) -> None:
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/sub/__init__.py": "from . import x\n",
        "pkg/sub/x.py": "from ..y import thing\n",
        "pkg/y.py": "from .sub import x\nthing = 1\n",
    })
    graph = build_graph(tmp_path, ["pkg"])
    assert graph.edges["pkg.sub.x"] == {"pkg.y"}
    assert cycles(graph) == {frozenset({"pkg.sub.x", "pkg.y"})}


def test_checker_flags_private_imports_and_private_attributes(tmp_path: Path) -> None:
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/owner.py": "_secret = 1\ndef _helper() -> int:\n    return _secret\n",
        "pkg/thief.py": "from pkg.owner import _secret\n",
        "pkg/pickpocket.py": "from pkg import owner as o\nx = o._helper()\n",
        "pkg/dotted.py": "import pkg.owner\ny = pkg.owner._secret\n",
        "pkg/honest.py": "from pkg.owner import __doc__ as d\nimport os\nx = os._exit\n",
    })
    graph = build_graph(tmp_path, ["pkg"])
    assert graph.private == {
        ("pkg.thief", "pkg.owner._secret"),
        ("pkg.pickpocket", "pkg.owner._helper"),
        ("pkg.dotted", "pkg.owner._secret"),
    }
    assert cycles(graph) == set()


def test_checker_flags_a_layering_violation(tmp_path: Path) -> None:
    _write(tmp_path, {
        "fixgw/__init__.py": "",
        "fixgw/engine.py": "import utilities.customer\n",
        "fixgw/cli/__init__.py": "from utilities import customer\nfrom venues import exchange\n",
        "venues/__init__.py": "",
        "venues/exchange.py": "from fixgw import engine\nfrom replication.log import Log\n",
        "replication/__init__.py": "",
        "replication/log.py": "class Log: ...\n",
        "utilities/__init__.py": "",
        "utilities/customer.py": "from replication.log import Log\nfrom fixgw import engine\n",
    })
    graph = build_graph(tmp_path, PACKAGES)
    assert layering_violations(graph) == {
        ("fixgw.engine", "utilities"),
        ("venues.exchange", "replication"),
    }

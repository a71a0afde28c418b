"""The package layout stays layered (issue 13): no import circles, and imports only go down.

Every module under worker/, tasks/ and config/ is parsed with ``ast`` (nothing is imported), and
every import it contains counts: at module level, inside functions, under ``TYPE_CHECKING``, in
``try``, and ``importlib.import_module("...")`` with a literal name. An import of ``a.b.c``
is an edge to the module ``a.b.c`` (or to the package ``a.b`` when ``c`` is a name in it); the
parent packages Python also runs on the way are not edges. The layers are a table of module
prefixes below: move a module and this is the one place to update.

Run ``python -m tests.test_layers`` to print every violation at once.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("worker", "tasks", "config")

# Highest first: a module may import from its own layer or any layer below it, never above.
# Prefixes match a module and its submodules; the longest matching prefix decides.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("entry points", ("worker.cli", "worker.web", "worker.web_auth", "worker.web_subscriptions")),
    # The Matrix bot: a long-running entry point of its own, below the CLI that starts it.
    ("chat bot", ("worker.bot",)),
    ("celery tasks", ("tasks",)),
    # Process wiring: the process-wide settings and engines, queue status, the beat lock.
    # Above the stages, so a stage gets its settings and sessions passed in.
    ("operations", ("worker.runtime", "worker.status", "worker.beatlock")),
    # Services shared by the CLI, the web page and the chat bot: the rules live here once.
    ("services", ("worker.subscriptions",)),
    ("ingest", ("worker.ingest", "worker.discover")),
    ("extract", ("worker.extract",)),
    ("alerts", ("worker.alerts", "worker.email_channel")),
    (
        "matching",
        (
            "worker.match",
            "worker.search",
            "worker.query",
            "worker.thesaurus",
            "worker.prefilter",
            "worker.keywords",
            "worker.taxonomy",
            "worker.tags",
            "worker.newsletter",
            "worker.publications",
        ),
    ),
    (
        "infrastructure",
        ("worker.blobs", "worker.storage", "worker.fetch", "worker.ratelimit", "worker.logs"),
    ),
    # Pure helpers: they import nothing from worker/.
    ("leaves", ("worker.text", "worker.dates", "worker.urls", "worker.redact", "worker.signing")),
    ("config", ("config",)),
]
LEAVES = dict(LAYERS)["leaves"]
# Package roots run before any of their modules: they must sit at the bottom of their package.
EXACT_LAYERS = {"worker": "leaves"}

# Edges that break a rule on purpose, each with its reason: (importer, imported) -> why.
ALLOWED: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    path: Path
    line: int

    def __str__(self) -> str:
        where = f"{self.path.relative_to(ROOT)}:{self.line}"
        return f"{self.source} -> {self.target}  ({where})"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def _resolve(name: str) -> str | None:
    """The project module ``name`` imports: itself, or its nearest enclosing package."""
    known = modules()
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _imported_names(tree: ast.AST, package: str) -> Iterator[tuple[list[str], int]]:
    """For each import statement: the candidate module names, most specific first."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield [alias.name], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for alias in node.names:
                yield [f"{module}.{alias.name}", module], node.lineno
        elif (
            isinstance(node, ast.Call)
            and _call_name(node.func) in ("import_module", "importlib.import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield [node.args[0].value], node.lineno


def _call_name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    return ""


@cache
def edges() -> tuple[Edge, ...]:
    known = modules()
    found: dict[tuple[str, str], Edge] = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for candidates, line in _imported_names(tree, package):
            exact = next((c for c in candidates if c in known), None)
            target = exact or _resolve(candidates[-1])
            if target and target != name and (name, target) not in found:
                found[name, target] = Edge(name, target, path, line)
    return tuple(sorted(found.values(), key=lambda e: (e.source, e.target)))


def _inside(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer_of(module: str) -> int | None:
    """The index of the module's layer in LAYERS (0 is the top), or None if it has none."""
    names = [name for name, _ in LAYERS]
    if module in EXACT_LAYERS:
        return names.index(EXACT_LAYERS[module])
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if _inside(module, prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return None if best is None else best[1]


def _report(title: str, problems: list[str]) -> str:
    return f"{title} ({len(problems)}):\n  " + "\n  ".join(problems)


def _breaking(rule: str, broken: list[Edge]) -> list[str]:
    return [f"{edge}: {rule}" for edge in broken if (edge.source, edge.target) not in ALLOWED]


# -- the rules -------------------------------------------------------------------------------


def cycle_problems() -> list[str]:
    """Strongly connected components of more than one module (Tarjan), each as a circle."""
    graph: dict[str, list[str]] = {name: [] for name in modules()}
    for edge in edges():
        graph[edge.source].append(edge.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
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
    problems = []
    for component in sorted(components):
        inner = [str(e) for e in edges() if e.source in component and e.target in component]
        problems.append(f"circle {{{', '.join(component)}}} through " + "; ".join(inner))
    return problems


def config_problems() -> list[str]:
    broken = [e for e in edges() if _inside(e.source, "config") and not _inside(e.target, "config")]
    return _breaking("config/ imports nothing from worker/ or tasks/", broken)


def storage_problems() -> list[str]:
    broken = [
        e
        for e in edges()
        if _inside(e.source, "worker.storage")
        and _inside(e.target, "worker")
        and not _inside(e.target, "worker.storage")
        and not any(_inside(e.target, leaf) for leaf in LEAVES)
    ]
    return _breaking("worker/storage/ imports only worker.storage.*, the leaves and config", broken)


def tasks_problems() -> list[str]:
    broken = [e for e in edges() if _inside(e.source, "worker") and _inside(e.target, "tasks")]
    return _breaking("worker/ imports nothing from tasks/", broken)


def unplaced_modules() -> list[str]:
    return [
        f"{name} ({path.relative_to(ROOT)})"
        for name, path in modules().items()
        if layer_of(name) is None
    ]


def upward_problems() -> list[str]:
    problems = []
    for edge in edges():
        source, target = layer_of(edge.source), layer_of(edge.target)
        if source is None or target is None or target >= source:
            continue
        if (edge.source, edge.target) not in ALLOWED:
            problems.append(
                f"{edge}: layer {LAYERS[source][0]!r} imports from the higher layer "
                f"{LAYERS[target][0]!r}"
            )
    return problems


# -- tests -----------------------------------------------------------------------------------


def test_the_graph_sees_every_kind_of_import() -> None:
    """The checks below are only as good as the graph: lazy imports must be in it."""
    found = {(e.source, e.target) for e in edges()}
    assert ("worker.blobs", "worker.blobs.s3") in found  # inside a function
    assert ("worker.blobs.s3", "config.settings") in found  # under TYPE_CHECKING
    assert ("tasks", "tasks.jobs") in found  # `from package import module`
    assert len(modules()) > 40


def test_no_import_circles() -> None:
    problems = cycle_problems()
    assert not problems, _report("import circles", problems)


def test_config_imports_nothing_above_it() -> None:
    problems = config_problems()
    assert not problems, _report("config/ importing worker/ or tasks/", problems)


def test_storage_imports_only_storage() -> None:
    problems = storage_problems()
    assert not problems, _report("worker/storage/ importing the rest of worker/", problems)


def test_worker_does_not_import_tasks() -> None:
    problems = tasks_problems()
    assert not problems, _report("worker/ importing tasks/", problems)


def test_every_module_has_a_layer() -> None:
    problems = unplaced_modules()
    assert not problems, _report("modules in no layer: add them to LAYERS", problems)


def test_imports_only_go_down_the_layers() -> None:
    problems = upward_problems()
    assert not problems, _report("imports from a higher layer", problems)


def test_allowed_edges_still_exist() -> None:
    """An exception for an edge that is gone is stale: remove it from ALLOWED."""
    found = {(e.source, e.target) for e in edges()}
    stale = [f"{a} -> {b}" for a, b in ALLOWED if (a, b) not in found]
    assert not stale, _report("stale entries in ALLOWED", stale)


if __name__ == "__main__":
    checks = [
        ("import circles", cycle_problems),
        ("config/ importing worker/ or tasks/", config_problems),
        ("worker/storage/ importing the rest of worker/", storage_problems),
        ("worker/ importing tasks/", tasks_problems),
        ("modules in no layer", unplaced_modules),
        ("imports from a higher layer", upward_problems),
    ]
    for title, check in checks:
        found = check()
        print(_report(title, found) if found else f"{title}: none")

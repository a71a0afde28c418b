"""The locked dependencies are the declared ones, and the shipped set is the locked one.

``uv.lock`` pins every dependency of pyproject.toml (all extras); ``requirements.lock`` is its
export for the image (the ``s3`` extra, no ``dev``, every file's sha256), installed by the
Dockerfile with ``pip install --require-hashes``. ``make lock`` writes both. Here, offline:
the lock agrees with pyproject.toml, requirements.lock is exactly what ``make lock`` exports
from it, and every module worker/, tasks/ and config/ import is a dependency they declare
themselves (not one that happens to come with another package: ``lxml.html.clean`` moved out of
lxml and an install without it could not extract HTML).
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.conftest import BIN, ROOT

UV = BIN / "uv"
PACKAGES = ("worker", "tasks", "config")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# Runtime imports the code does not spell as `import`: a parser name, a database URL, an
# import inside a dependency whose own metadata does not reliably bring it in.
INDIRECT = {
    "lxml": "BeautifulSoup(..., 'lxml') in worker/discover.py and worker/extract.py",
    "psycopg": "postgresql+psycopg:// database URLs",
    "lxml-html-clean": "trafilatura -> justext imports lxml.html.clean",
}
# In pyproject's dev extra only: never in the image.
DEV_ONLY = {"pytest", "playwright", "matrix-synapse", "ruff", "mypy", "hypothesis", "reportlab"}

needs_uv = pytest.mark.skipif(not UV.exists(), reason="uv is not installed in the venv")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_imports(roots: list[Path]) -> dict[str, set[str]]:
    """Absolute module names imported anywhere under ``roots`` (inside functions too, not under
    ``if TYPE_CHECKING:``), each with the files importing it."""
    found: dict[str, set[str]] = {}

    def visit(node: ast.AST, path: Path) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child, path)
            return
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            if name != "__future__":
                found.setdefault(name, set()).add(str(path))
        for child in ast.iter_child_nodes(node):
            visit(child, path)

    for root in roots:
        for path in sorted(root.rglob("*.py")):
            visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), path)
    return found


def declared_runtime() -> set[str]:
    """Distributions the image installs by name: [project.dependencies] and the s3 extra."""
    project = PYPROJECT["project"]
    requirements = [*project["dependencies"], *project["optional-dependencies"]["s3"]]
    return {normalize(Requirement(r).name) for r in requirements}


def export_args() -> list[str]:
    """The flags ``make lock`` exports requirements.lock with (one place: the Makefile)."""
    m = re.search(r"^EXPORT_ARGS\s*:=\s*(.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert m, "Makefile: EXPORT_ARGS not found"
    return shlex.split(m[1])


def lock_entries(path: Path = ROOT / "requirements.lock") -> list[tuple[str, str, str | None]]:
    """(name, version, environment marker or None) of every requirement of requirements.lock."""
    pattern = re.compile(r"^([A-Za-z0-9][\w.-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]*?))?\s*\\?$", re.M)
    return [(normalize(m[1]), m[2], m[3] or None) for m in pattern.finditer(path.read_text())]


def locked_runtime() -> set[str]:
    """The names requirements.lock pins (for any platform or Python)."""
    return {name for name, _version, _marker in lock_entries()}


def test_every_runtime_import_is_a_declared_dependency() -> None:
    distributions = importlib.metadata.packages_distributions()
    declared = declared_runtime()
    undeclared = []
    for module, files in sorted(runtime_imports([ROOT / p for p in PACKAGES]).items()):
        top = module.split(".")[0]
        if top in sys.stdlib_module_names or top in PACKAGES:
            continue
        dists = {normalize(d) for d in distributions.get(top, [])}
        if not dists:
            undeclared.append(f"{module} (no installed distribution provides it): {files}")
        elif not dists & declared:
            undeclared.append(f"{module} ({', '.join(sorted(dists))}): {sorted(files)}")
    assert not undeclared, "imported but not declared in pyproject.toml:\n" + "\n".join(undeclared)
    missing = {name: why for name, why in INDIRECT.items() if name not in declared}
    assert not missing, f"loaded at run time but not declared: {missing}"


@needs_uv
def test_uv_lock_agrees_with_pyproject() -> None:
    out = subprocess.run(
        [str(UV), "lock", "--check", "--offline", "--project", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, f"uv.lock is out of date: run `make lock`\n{out.stderr}"


@needs_uv
def test_requirements_lock_is_the_export_of_uv_lock(tmp_path: Path) -> None:
    args = export_args()
    assert "--extra" in args and "s3" in args, args  # the extra the Dockerfile installs
    assert "--frozen" in args and "--no-emit-project" in args, args
    assert "dev" not in args and "--all-extras" not in args, args
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy2(ROOT / name, tmp_path / name)
    out = subprocess.run(
        [str(UV), "export", "-q", *args, "-o", "requirements.lock"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    fresh = (tmp_path / "requirements.lock").read_text()
    assert (ROOT / "requirements.lock").read_text() == fresh, (
        "requirements.lock is not the export of uv.lock: run `make lock`"
    )


def test_requirements_lock_is_the_hashed_runtime_set() -> None:
    locked = locked_runtime()
    assert declared_runtime() <= locked, f"not locked: {declared_runtime() - locked}"
    assert not DEV_ONLY & locked, f"dev packages in the image: {DEV_ONLY & locked}"
    # Every requirement pinned and hashed: pip --require-hashes refuses anything else.
    entries = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / "requirements.lock").read_text())
    for entry in entries:
        if entry.startswith("#"):
            continue
        assert "==" in entry.split()[0] and "--hash=sha256:" in entry, entry

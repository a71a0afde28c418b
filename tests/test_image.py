"""What the Docker image would hold, built and run without a Docker engine.

The Dockerfile's build stage copies a few paths of the build context, installs
requirements.lock (uv.lock's runtime set with the s3 extra, every file hash-checked) and then
the project without resolving anything. Here the same paths are copied to a scratch context and
the build stage's own ``pip`` commands run against a fresh venv (with uv, which takes the same
flags: offline from uv's cache when it holds the locked files, else from PyPI). The venv must
then hold exactly the locked set, no dev extra, and the installed distribution is run from a
directory outside the source tree, as the image's ``WORKDIR`` is: every module the code imports
(inside functions too), a poll of the replica that extracts HTML pages (trafilatura) and a PDF
(pypdfium2), ``archive search``, the Celery app the workers load and the web service with the
compose healthcheck's own command. A dependency or package file missing from the install (a
template, a migration, ``lxml.html.clean``) fails here, not in production.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.markers import Marker

from tests.conftest import BIN, ROOT, Replica, free_port, make_env

sys.path.insert(0, str(ROOT / "tools"))
import check_compose

from tests.test_celery_e2e import service
from tests.test_lock import PACKAGES, lock_entries, normalize, runtime_imports

sys.path.insert(0, str(ROOT / "tools"))

UV = BIN / "uv"
BUILD_STAGE = "build"

pytestmark = pytest.mark.skipif(not UV.exists(), reason="uv is not installed in the venv")


def build_context(target: Path) -> Path:
    """The files the Dockerfile copies from the build context, and nothing else."""
    dockerfile = check_compose.Dockerfile.parse(ROOT / "Dockerfile")
    target.mkdir()
    for sources, _dest in dockerfile.copies:
        for source in sources:
            path = ROOT / source.rstrip("/")
            if path.is_dir():
                shutil.copytree(
                    path, target / path.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
                )
            else:
                shutil.copy2(path, target / path.name)
    return target


def build_stage_commands(dockerfile: Path = ROOT / "Dockerfile") -> list[list[str]]:
    """The commands of the build stage's RUN instructions, in order, split at ``&&``."""
    return check_compose.Dockerfile.parse(dockerfile).runs.get(BUILD_STAGE, [])


def uv_equivalent(argv: list[str], python: Path) -> list[str] | None:
    """The build-stage command for the venv of ``python``; None: nothing to do here."""
    if argv[:3] in (["python", "-m", "venv"], ["python", "-m", "compileall"]):
        return None  # the fixture makes the venv; byte-compiling changes no behaviour
    if argv[:2] == ["pip", "install"]:
        return [str(UV), "pip", "install", "--python", str(python), *argv[2:]]
    if argv == ["pip", "check"]:
        return [str(UV), "pip", "check", "--python", str(python)]
    raise AssertionError(f"tests/test_image.py does not know the Dockerfile's {shlex.join(argv)!r}")


def run_uv(argv: list[str], cwd: Path) -> None:
    """Offline from uv's cache first (make install filled it); PyPI when a file is missing."""
    attempts = [[*argv[:3], "--offline", *argv[3:]], argv] if argv[2] == "install" else [argv]
    for command in attempts:
        out = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
        if out.returncode == 0:
            return
    raise AssertionError(f"{shlex.join(argv)} failed:\n{out.stdout}\n{out.stderr}")


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding what the Dockerfile's build stage puts in the image's /opt/venv."""
    root = tmp_path_factory.mktemp("image")
    context = build_context(root / "src")
    venv = root / "venv"
    subprocess.run([str(UV), "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    commands = build_stage_commands()
    installs = [argv for argv in commands if argv[:2] == ["pip", "install"]]
    assert any("--require-hashes" in argv for argv in installs), "the lock is not installed"
    for argv in installs:  # nothing may be resolved at build time: only the locked set
        assert "--require-hashes" in argv or "--no-deps" in argv, shlex.join(argv)
    for argv in commands:
        command = uv_equivalent(argv, venv / "bin" / "python")
        if command is not None:
            run_uv(command, context)
    return venv


def run_in_image(
    venv: Path, argv: list[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(exist_ok=True)
    return subprocess.run(
        [str(venv / "bin" / argv[0]), *argv[1:]],
        env={**env, "PATH": f"{venv / 'bin'}:/usr/bin:/bin"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_image_holds_exactly_the_locked_set(image: Path) -> None:
    listed = subprocess.run(
        [str(UV), "pip", "list", "--format", "json", "--python", str(image / "bin" / "python")],
        capture_output=True,
        text=True,
        check=True,
    )
    installed = {normalize(p["name"]): p["version"] for p in json.loads(listed.stdout)}
    expected = {
        name: version
        for name, version, marker in lock_entries()
        if marker is None or Marker(marker).evaluate()  # this interpreter is the venv's
    }
    expected["tipwatch"] = installed.get("tipwatch", "missing")
    assert installed == expected


def test_every_import_of_the_installed_code_resolves(image: Path, tmp_path: Path) -> None:
    env, home = make_env(tmp_path / "data", None), tmp_path / "home"
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(run_in_image(image, ["python", "-c", purelib], env, home).stdout.strip())
    assert site.is_relative_to(image)
    modules = sorted(runtime_imports([site / package for package in PACKAGES]))
    assert "trafilatura" in modules and "obstore" in modules  # the lazy imports are walked
    script = (
        "import importlib, sys\n"
        "failed = []\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        module = importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        failed.append(f'{name}: {exc!r}')\n"
        "    else:\n"
        "        if name.split('.')[0] in ('worker', 'tasks', 'config'):\n"
        "            assert module.__file__.startswith(sys.prefix), module.__file__\n"
        "print('\\n'.join(failed))\n"
        "sys.exit(1 if failed else 0)\n"
    )
    out = run_in_image(image, ["python", "-c", script, *modules], env, home)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.fixture(scope="module")
def polled(
    image: Path, replica_session: Replica, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, str], Path]:
    """One poll, by the installed CLI, of a replica source with HTML pages and a PDF."""
    root = tmp_path_factory.mktemp("polled")
    env, home = make_env(root / "data", replica_session), root / "home"
    poll = run_in_image(image, ["tipwatch", "poll", "--source", "unodc-news", "--json"], env, home)
    assert poll.returncode == 0, poll.stderr
    assert "ImportError" not in poll.stdout + poll.stderr, poll.stdout + poll.stderr
    (report,) = json.loads(poll.stdout)["sources"]
    assert report["status"] == "ok" and report["failed"] == 0, report
    assert report["new"] > 0 and not report["failures"], report
    return env, home


def test_poll_extracts_html_and_pdf_and_search_finds_them(
    image: Path, polled: tuple[dict[str, str], Path]
) -> None:
    env, home = polled
    listed = run_in_image(image, ["tipwatch", "archive", "list", "--json"], env, home)
    documents = json.loads(listed.stdout)
    assert {d["kind"] for d in documents} == {"html", "pdf"}, documents
    for document in documents:
        assert document["extract_status"] == "done", document
        assert not document["extract_error"], document
    for kind in ("html", "pdf"):
        first = next(d for d in documents if d["kind"] == kind)
        shown = run_in_image(
            image, ["tipwatch", "archive", "show", str(first["id"]), "--text", "--json"], env, home
        )
        text = "\n".join(json.loads(shown.stdout)["text_pages"])
        assert len(text.split()) > 10 and "<p" not in text, (kind, text)

    search = run_in_image(
        image, ["tipwatch", "archive", "search", "trafficking", "--json"], env, home
    )
    assert search.returncode == 0, search.stderr
    hits = json.loads(search.stdout)
    assert {hit["kind"] for hit in hits} == {"html", "pdf"}, hits
    assert all("«" in hit["snippet"] for hit in hits), hits


def test_celery_app_and_web_healthcheck(
    image: Path, polled: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, home = polled
    celery = run_in_image(image, ["celery", "-A", "tasks.celery_app", "report"], env, home)
    assert celery.returncode == 0, celery.stderr
    assert "tipwatch" in celery.stdout

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    port = str(free_port())
    web = [str(image / "bin" / "tipwatch"), *compose["web"]["command"][1:]]
    web = [{"8000": port, "0.0.0.0": "127.0.0.1"}.get(a, a) for a in web]
    healthcheck = compose["web"]["healthcheck"]["test"][1:]  # ["python", "-c", "..."]
    healthcheck = [a.replace(":8000/", f":{port}/") for a in healthcheck]
    with service(
        web,
        {**env, "PATH": f"{image / 'bin'}:/usr/bin:/bin"},
        tmp_path / "web.log",
        "Uvicorn running",
    ):
        probe = run_in_image(image, healthcheck, env, home)
        assert probe.returncode == 0, probe.stderr
        page = run_in_image(
            image,
            [
                "python",
                "-c",
                f"import urllib.request; print(urllib.request.urlopen("
                f"'http://127.0.0.1:{port}/static/htmx.min.js').status)",
            ],
            env,
            home,
        )
        assert page.stdout.strip() == "200", page.stderr

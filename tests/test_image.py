"""What the Docker image would hold, built and run without a Docker engine.

The Dockerfile's build stage copies a few paths of the build context and runs
``pip install ".[s3]"``. Here the same paths are copied to a scratch context, installed (not
editable) into a fresh venv with uv, offline from the cache ``make install`` filled, and the
installed distribution is run from a directory outside the source tree, as the image's
``WORKDIR`` is: the CLI, a poll of the replica (migrations, sources.yaml, thesaurus), the web
service with the compose healthcheck's own command, and the Celery app the workers load.
A package file missing from the wheel (a template, a migration) fails here, not in production.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import BIN, ROOT, Replica, free_port, make_env
from tests.test_celery_e2e import service

sys.path.insert(0, str(ROOT / "tools"))
import check_compose

UV = BIN / "uv"

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


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding what ``pip install ".[s3]"`` puts in the image's /opt/venv."""
    root = tmp_path_factory.mktemp("image")
    context = build_context(root / "src")
    venv = root / "venv"
    subprocess.run([str(UV), "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    install = subprocess.run(
        [
            *(str(UV), "pip", "install", "--offline"),
            "--python",
            str(venv / "bin" / "python"),
            f"{context}[s3]",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr
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


def test_installed_distribution_runs_outside_the_source_tree(
    image: Path, replica_session: Replica, tmp_path: Path
) -> None:
    env = make_env(tmp_path / "data", replica_session)
    home = tmp_path / "home"

    where = run_in_image(
        image,
        ["python", "-c", "import worker, tasks, config, obstore; print(worker.__file__)"],
        env,
        home,
    )
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().startswith(str(image)), where.stdout  # not the repository

    poll = run_in_image(
        image, ["tipwatch", "poll", "--source", "unodc-glotip", "--json"], env, home
    )
    assert poll.returncode == 0, poll.stderr
    (report,) = json.loads(poll.stdout)["sources"]
    assert report["status"] == "ok" and report["new"] > 0, report
    listed = run_in_image(image, ["tipwatch", "archive", "list", "--json"], env, home)
    assert len(json.loads(listed.stdout)) == report["new"]

    celery = run_in_image(image, ["celery", "-A", "worker", "report"], env, home)
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

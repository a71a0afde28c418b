"""The README stays true: its commands exist, its settings are the real ones, CI runs its tests."""

from __future__ import annotations

import re
import subprocess

import pytest

from config.settings import Settings
from tests.conftest import BIN, ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _documented_commands() -> list[tuple[str, ...]]:
    commands = set()
    for line in README.splitlines():
        m = re.match(r"\s*tipwatch ((?:[a-z]+ ?)+)", line)
        if m:
            words = m[1].split()
            # `archive search`, `db upgrade`: keep the sub-command, drop arguments.
            commands.add(tuple(words[:2]) if words[0] in ("archive", "db") else (words[0],))
    return sorted(commands)


def test_readme_documents_commands() -> None:
    assert {c[0] for c in _documented_commands()} >= {
        "poll",
        "sources",
        "subscribe",
        "subscriptions",
        "unsubscribe",
        "archive",
        "web",
    }


@pytest.mark.parametrize("command", _documented_commands())
def test_documented_command_exists(command: tuple[str, ...]) -> None:
    result = subprocess.run(
        [str(BIN / "tipwatch"), *command, "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_documented_settings_are_the_real_ones() -> None:
    documented = {m.lower() for m in re.findall(r"`TIPWATCH_([A-Z_]+)`", README)}
    fields = set(Settings.model_fields)
    assert documented - fields == set(), "README documents settings that do not exist"
    assert fields - documented == set(), "settings missing from the README"


def test_setup_commands_and_ci_agree() -> None:
    assert "make run" in README and "make test" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.MULTILINE), ".ci/run must run the README's test command"

"""Run benches, print their tables and keep them in ``bench/results/NAME.md`` with the machine."""

from __future__ import annotations

import importlib
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import BENCHES

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> str:
    try:
        uname = subprocess.run(["uname", "-a"], capture_output=True, text=True).stdout.strip()
    except OSError:
        uname = platform.platform()
    return (
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n- machine: `{uname}`\n"
        f"- cpus: {os.cpu_count()}\n- python: {platform.python_version()}\n"
    )


def main(argv: list[str]) -> int:
    names = argv or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown bench {unknown[0]!r}; known: {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    RESULTS.mkdir(exist_ok=True)
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        table = module.run()
        report = f"# bench: {name}\n\n{machine()}\n{table}\n"
        (RESULTS / f"{name}.md").write_text(report, encoding="utf-8")
        print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

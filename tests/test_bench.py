"""Every bench runs in its reduced "smoke" size, so the bench code cannot rot.

The benches assert their own consistency (both sides of each comparison found the same
documents, bytes or text); here only the table's shape is checked, never a time.
"""

from __future__ import annotations

import importlib

import pytest

from bench import BENCHES


@pytest.mark.parametrize("name", BENCHES)
def test_bench_smoke(name: str) -> None:
    table = importlib.import_module(f"bench.{name}").run(smoke=True)
    tables = [
        [line for line in block.splitlines() if line.startswith("|")]
        for block in table.split("\n\n")
    ]
    tables = [rows for rows in tables if rows]
    assert tables, table
    for rows in tables:
        assert len(rows) >= 3, table  # header, separator, at least one row
        assert rows[1].startswith("|---"), table
        widths = {row.count("|") for row in rows}
        assert len(widths) == 1, table  # every row has its header's columns
    assert "×" in table, table  # each figure is shown beside its baseline as a ratio

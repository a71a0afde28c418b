"""Benchmarks: ``python -m bench`` runs every module in BENCHES, ``python -m bench NAME`` one.

A bench is a module with ``run(smoke: bool = False) -> str`` returning its figures, each beside
a baseline measured in the same run, as a markdown table; ``smoke=True`` runs a reduced size
(tests/test_bench.py) and checks the same results. To add one, write the module and list its
name here.
"""

BENCHES: tuple[str, ...] = (
    "poll",
    "pdf_extract",
    "search",
    "memory",
    "matching",
    "e2e",
    "keywords",
)

"""Benchmarks: ``python -m bench`` runs every module in BENCHES, ``python -m bench NAME`` one.

A bench is a module with ``run() -> str`` returning its figures as a markdown table; to add
one, write the module and list its name here.
"""

BENCHES: tuple[str, ...] = ("matching",)

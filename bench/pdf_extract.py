"""PDF text extraction, pages per second: pypdfium2 (what TIP Watch uses) vs pdfminer.six and
poppler's ``pdftotext``, on a multi-page PDF built from the seed newsletters (synthetic FR
n°23, EN n°23, EN n°11, repeated) by the replica's reportlab builder.

All three must extract the same known sentences (whitespace and case aside) and a word count
within 5% of each other, so the figures compare like with like.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import tempfile
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path

from tests.replica import pdfs, texts
from worker.extract.formats import extract_pdf

SENTENCES = (
    "focus on the regional expert group meeting in Dubrovnik",
    "La traite des êtres humains demeure un enjeu majeur en Europe",
)


def build(path: Path, pages: int) -> Path:
    """A PDF of at least ``pages`` pages: the seed texts repeated (each round ~25 pages)."""
    one_round = [
        *texts.paragraphs(texts.N23_FR),
        *texts.n23_en_paragraphs(),
        *texts.n11_en_paragraphs(),
    ]
    rounds = 1 if pages <= 25 else -(-pages // 25) + 1
    paras = one_round * rounds
    data = pdfs.render_pdf("Seed newsletters, repeated", tuple(paras), "en", 0)
    # Keep the leading paragraphs that fill about ``pages`` pages: cut by proportion, re-render.
    have = pdfs.pdf_page_count(data)
    if have > pages:
        keep = max(len(one_round) // 2, int(len(paras) * pages / have))
        data = pdfs.render_pdf("Seed newsletters, repeated", tuple(paras[:keep]), "en", pages)
    path.write_bytes(data)
    return path


def with_pypdfium2(path: Path) -> list[str]:
    result = extract_pdf(path)
    assert result.error is None, result.error
    return result.pages


def with_pdfminer(path: Path) -> list[str]:
    from pdfminer.high_level import extract_text

    return extract_text(str(path)).split("\f")[:-1]


def with_pdftotext(path: Path) -> list[str]:
    out = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True
    ).stdout.decode("utf-8")
    return out.split("\f")[:-1]


def _flat(pages: list[str]) -> str:
    text = unicodedata.normalize("NFC", " ".join(pages)).replace("\u2019", "'")
    return " ".join(re.sub(r"-\s*\n\s*", "-", text).split()).casefold()


def _time(extract: Callable[[Path], list[str]], path: Path, repeat: int) -> tuple[float, list]:
    extract(path)  # warm-up: imports, language models, page cache
    times, pages = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        pages = extract(path)
        times.append(time.perf_counter() - started)
    return statistics.median(times), pages


def run(smoke: bool = False) -> str:
    target_pages, repeat = (8, 1) if smoke else (60, 5)
    extractors: list[tuple[str, Callable[[Path], list[str]], int]] = [
        ("pypdfium2 (worker.extract.formats.extract_pdf)", with_pypdfium2, repeat),
        ("pdfminer.six (high_level.extract_text)", with_pdfminer, max(1, repeat // 2)),
    ]
    if shutil.which("pdftotext"):
        extractors.append(("poppler pdftotext (subprocess)", with_pdftotext, repeat))
    with tempfile.TemporaryDirectory(prefix="bench-pdf-") as tmp:
        path = build(Path(tmp) / "seeds.pdf", target_pages)
        size = path.stat().st_size
        results = [(name, *_time(fn, path, n), n) for name, fn, n in extractors]
    page_count = len(results[0][2])
    words = {name: len(_flat(pages).split()) for name, _, pages, _ in results}
    for name, _, pages, _ in results:
        assert len(pages) == page_count, (name, len(pages), page_count)
        flat = _flat(pages)
        for sentence in SENTENCES:
            assert sentence.casefold() in flat, (name, sentence)
    reference = words[results[0][0]]
    assert all(abs(w - reference) <= reference * 0.05 for w in words.values()), words
    base_rate = page_count / results[0][1]
    lines = [
        f"One {page_count}-page PDF ({size / 1024:,.0f} KiB, reportlab, seed newsletters EN+FR); "
        "median wall time of N runs after one warm-up run.",
        "",
        "| extractor | runs | seconds | pages/s | words extracted | pypdfium2 speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for name, seconds, _, n in results:
        rate = page_count / seconds
        lines.append(
            f"| {name} | {n} | {seconds:.3f} | {rate:,.0f} | {words[name]:,} "
            f"| {base_rate / rate:,.1f}× |"
        )
    lines += [
        "",
        f"All extractors return {page_count} pages, both known sentences "
        f"({'; '.join(repr(s) for s in SENTENCES)}) and word counts within 5% of each other. "
        "pdftotext's time includes starting the process.",
    ]
    if not shutil.which("pdftotext"):
        lines.append("pdftotext is not installed (poppler-utils): its row is missing.")
    return "\n".join(lines)

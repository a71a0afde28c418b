"""PDF extraction in a process pool: broken, encrypted and truncated files become a recorded
error with the original kept; a hung or crashing extractor never takes the poll down."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pypdf
import pytest

from tests.replica import build_pdf
from worker.extract.formats import Extracted, extract_pdf
from worker.extract.isolate import PdfPool, extract_pdf_isolated

TEXT = [
    "Trafficking in persons for forced labour and sexual exploitation remains widespread.",
    "Victims were trafficked across borders by organised criminal groups.",
]


def encrypt(source: Path, target: Path) -> Path:
    """The same PDF with a user password (RC4-128: pypdf needs no extra dependency)."""
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(source))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    target.write_bytes(buffer.getvalue())
    return target


def truncate(source: Path, target: Path, keep: float = 0.6) -> Path:
    """An interrupted download: the first 60 % of the bytes."""
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    return target


@pytest.fixture
def good_pdf(tmp_path: Path) -> Path:
    return build_pdf(tmp_path / "good.pdf", "Report on trafficking", TEXT, pages_min=3)


def test_good_pdf_text_per_page_in_the_pool(good_pdf: Path) -> None:
    result = extract_pdf_isolated(good_pdf, timeout=60)
    assert result.error is None
    assert len(result.pages) == 3
    assert "sexual exploitation" in result.pages[0]
    assert result.language == "en"
    assert result.pages == extract_pdf(good_pdf).pages


def test_encrypted_pdf_is_a_clear_error(good_pdf: Path, tmp_path: Path) -> None:
    result = extract_pdf_isolated(encrypt(good_pdf, tmp_path / "enc.pdf"), timeout=60)
    assert result.pages == []
    assert result.error and "encrypted" in result.error and "password" in result.error


def test_truncated_pdf_is_a_clear_error(good_pdf: Path, tmp_path: Path) -> None:
    result = extract_pdf_isolated(truncate(good_pdf, tmp_path / "cut.pdf"), timeout=60)
    assert result.pages == []
    assert result.error and ("truncated" in result.error or "corrupt" in result.error)


def _hang(path: Path) -> Extracted:
    time.sleep(60)
    return Extracted()


def _crash(path: Path) -> Extracted:
    os._exit(3)  # what a segfault in PDFium looks like from the parent


def test_a_hung_extractor_is_killed_and_the_pool_recovers(good_pdf: Path) -> None:
    pool = PdfPool(workers=1)
    try:
        started = time.monotonic()
        result = pool.extract(good_pdf, timeout=1.5, function=_hang)
        assert time.monotonic() - started < 10
        assert result.error == "PDF extraction timed out after 1.5 s"
        assert pool.extract(good_pdf, timeout=60).pages  # a fresh process took over
    finally:
        pool.close()


def test_a_crashing_extractor_is_recorded_and_the_pool_recovers(good_pdf: Path) -> None:
    pool = PdfPool(workers=1)
    try:
        result = pool.extract(good_pdf, timeout=30, function=_crash)
        assert result.error and "crashed" in result.error
        assert pool.extract(good_pdf, timeout=60).pages
    finally:
        pool.close()

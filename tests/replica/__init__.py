"""A local replica of the sites TIP Watch polls (SPIP sites of the French missions in Vienna,
UNODC), for tests without internet. See ``Replica`` and ``pdfs.build_pdf``."""

from .base import Hit
from .pdfs import build_pdf, pdf_text
from .server import SITES, Replica

__all__ = ["SITES", "Hit", "Replica", "build_pdf", "pdf_text"]

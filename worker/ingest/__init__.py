"""Stages 1–2: read a source's pages, find its documents, archive their bytes once each."""

"""The archive: blob stores behind one interface (disk, obstore), and `tipwatch archive`
list/search/show/open/export/verify through the real CLI."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from config.settings import Settings
from tests.archive_site import MiniSite, mini_tipwatch
from tests.conftest import Tipwatch
from worker.blobs import BlobMissing, BlobStore, LocalBlobStore, open_blob_store
from worker.blobs.s3 import ObjectBlobStore


def _local(tmp: Path) -> BlobStore:
    return LocalBlobStore(tmp / "archive")


def _memory(tmp: Path) -> BlobStore:
    from obstore.store import MemoryStore

    return ObjectBlobStore(MemoryStore(), "memory://")


def _obstore_local(tmp: Path) -> BlobStore:
    from obstore.store import LocalStore

    return ObjectBlobStore(LocalStore(str(tmp), mkdir=True), f"file://{tmp}")


@pytest.mark.parametrize("make", [_local, _memory, _obstore_local], ids=["disk", "memory", "obs"])
def test_every_blob_store_keeps_the_same_contract(
    make: Callable[[Path], BlobStore], tmp_path: Path
) -> None:
    store = make(tmp_path)
    data = b"%PDF-1.7 original bytes" * 1000
    sha = store.put_bytes(data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert store.exists(sha) and store.read(sha) == data
    assert store.put_bytes(data) == sha  # idempotent

    spooled = tmp_path / "spool.bin"
    spooled.write_bytes(b"second blob")
    second = hashlib.sha256(b"second blob").hexdigest()
    store.put_file(spooled, second)
    assert not spooled.exists(), "the spool file is consumed"
    assert b"".join(store.iter_chunks(second)) == b"second blob"
    assert sorted(store.iter_hashes()) == sorted([sha, second])
    assert store.rehash(sha) == sha
    copy = store.copy_to(sha, tmp_path / "out" / "copy.pdf")
    assert copy.read_bytes() == data

    missing = "0" * 64
    assert not store.exists(missing)
    with pytest.raises(BlobMissing):
        store.read(missing)


def test_settings_select_the_store(tmp_path: Path) -> None:
    local = open_blob_store(Settings(data_dir=tmp_path))
    assert isinstance(local, LocalBlobStore) and local.root == tmp_path / "archive"
    s3 = open_blob_store(
        Settings(
            data_dir=tmp_path,
            blob_url="s3://tipwatch-archive/originals",
            blob_endpoint="http://127.0.0.1:9000",
            blob_region="us-east-1",
        )
    )
    assert isinstance(s3, ObjectBlobStore) and s3.location == "s3://tipwatch-archive/originals"
    assert type(s3.store).__name__ == "S3Store"
    with pytest.raises(ValueError, match="unsupported scheme"):
        open_blob_store(Settings(data_dir=tmp_path, blob_url="ftp://x/y"))


@pytest.fixture
def polled(mini_site: MiniSite, tmp_path: Path) -> Tipwatch:
    tipwatch = mini_tipwatch(mini_site, tmp_path)
    report = tipwatch.json("poll", "--no-notify")["sources"][0]
    assert report["new"] >= 9 and report["status"] == "ok", report
    return tipwatch


def _by_name(tipwatch: Tipwatch) -> dict[str, dict]:
    rows = tipwatch.json("archive", "list", "--limit", "100")
    return {row["canonical_url"].rsplit("/", 1)[-1]: row for row in rows}


def test_broken_pdfs_are_archived_with_a_clear_error(polled: Tipwatch) -> None:
    documents = _by_name(polled)
    assert "encrypted" in documents["encrypted.pdf"]["extract_error"]
    assert "password" in documents["encrypted.pdf"]["extract_error"]
    assert "truncated" in documents["truncated.pdf"]["extract_error"]
    for name in ("encrypted.pdf", "truncated.pdf"):  # the original is kept all the same
        path = Path(
            polled.run("archive", "open", str(documents[name]["id"]), "--path").stdout.strip()
        )
        assert hashlib.sha256(path.read_bytes()).hexdigest() == documents[name]["content_sha256"]
    assert documents["newsletter_n7_en.pdf"]["extract_error"] is None


def test_list_and_search_filters(polled: Tipwatch) -> None:
    french = polled.json("archive", "list", "--language", "fr")
    assert french and {d["language"] for d in french} == {"fr"}
    issue = polled.json("archive", "list", "--issue", "7", "--kind", "pdf")
    assert {d["canonical_url"].rsplit("/", 1)[-1] for d in issue} == {
        "newsletter_n7_en.pdf",
        "lettre_n7_fr.pdf",
    }
    dated = polled.json("archive", "list", "--since", "2025-02-01", "--until", "2025-02-28")
    assert [d["title"] for d in dated] == ["Rapport sur la traite des êtres humains"]
    assert polled.json("archive", "list", "--source", "nope") == []

    found = polled.json("archive", "search", "trafficked", "--kind", "html")
    assert [d["title"] for d in found] == ["Child labour report"]
    assert "«trafficking»" in found[0]["snippet"]
    found = polled.json("archive", "search", "exploitations", "--language", "fr")
    assert {d["title"] for d in found} >= {"Rapport sur la traite des êtres humains"}
    table = polled.run("archive", "search", "exploitations").stdout
    assert "«exploitation»" in table


def test_show_lists_versions_and_same_issue(mini_site: MiniSite, polled: Tipwatch) -> None:
    path = "/docs/newsletter_n7_en.pdf"
    original = mini_site.files[path]
    from tests.archive_site import newsletter

    mini_site.files[path] = ("application/pdf", newsletter(7, "en", " Corrected figures."))
    polled.make_due(mini_site.base + path)  # replaced in place: found at its next revisit
    try:
        report = polled.json("poll", "--no-notify")["sources"][0]
    finally:
        mini_site.files[path] = original
    assert report["changed"] == 1, report
    newest = next(
        d
        for d in polled.json("archive", "list", "--issue", "7", "--kind", "pdf", "-l", "en")
        if d["version"] == 2
    )
    shown = polled.json("archive", "show", str(newest["id"]), "--text")
    assert [v["version"] for v in shown["versions"]] == [1, 2]
    assert shown["versions"][1]["id"] == newest["id"]
    assert "Corrected figures" in "".join(shown["text_pages"])
    assert {(o["kind"], o["language"]) for o in shown["same_issue"]} >= {("pdf", "fr")}
    older = polled.json("archive", "show", str(shown["versions"][0]["id"]))
    assert [v["id"] for v in older["versions"]] == [v["id"] for v in shown["versions"]]


def test_export_jsonl_and_csv_stream_text_and_keywords(polled: Tipwatch, tmp_path: Path) -> None:
    total = len(polled.json("archive", "list", "--limit", "100"))
    lines = polled.run("archive", "export").stdout.splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == total
    report = next(r for r in rows if r["title"] == "Child labour report")
    assert "debt bondage" in report["text"] and report["keywords"]

    out = tmp_path / "fr.csv"
    result = polled.run("archive", "export", "--format", "csv", "-o", str(out), "-l", "fr")
    assert "exported" in result.stderr
    table = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert table and {r["language"] for r in table} == {"fr"}
    assert any("êtres humains" in r["text"] for r in table)
    assert all(r["keywords"] for r in table if r["text"])
    bad = polled.run("archive", "export", "--format", "xml", check=False)
    assert bad.returncode == 2


def test_verify_reports_missing_and_corrupt_blobs(polled: Tipwatch) -> None:
    ok = polled.json("archive", "verify")
    assert ok["ok"] and ok["checked"] >= 9 and not ok["missing"] and not ok["corrupt"]
    assert "0 missing, 0 corrupt" in polled.run("archive", "verify").stdout

    documents = _by_name(polled)
    store = LocalBlobStore(polled.data_dir / "archive")
    corrupt = documents["newsletter_n7_en.pdf"]
    store.path(corrupt["content_sha256"]).write_bytes(b"bit rot")
    lost = documents["en-report.html"]
    store.path(lost["content_sha256"]).unlink()

    result = polled.run("archive", "verify", "--json", check=False)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["corrupt"] == [
        {"sha256": corrupt["content_sha256"], "documents": [corrupt["id"]]}
    ]
    assert report["missing"] == [{"sha256": lost["content_sha256"], "documents": [lost["id"]]}]
    table = polled.run("archive", "verify", check=False)
    assert table.returncode == 1 and "1 missing, 1 corrupt" in table.stdout
    opened = polled.run("archive", "open", str(lost["id"]), check=False)
    assert opened.returncode == 1 and "missing" in opened.stderr


def test_the_pipeline_archives_into_an_object_store(
    mini_site: MiniSite,
    tmp_path: Path,
) -> None:
    """TIPWATCH_BLOB_URL goes through ObjectBlobStore (obstore) for poll, open and verify."""
    bucket = tmp_path / "bucket"
    tipwatch = mini_tipwatch(mini_site, tmp_path, TIPWATCH_BLOB_URL=f"file://{bucket}")
    tipwatch.run("poll", "--no-notify")
    documents = _by_name(tipwatch)
    pdf = documents["newsletter_n7_en.pdf"]
    blob = bucket / BlobStore.key(pdf["content_sha256"])
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == pdf["content_sha256"]
    assert not (tmp_path / "data" / "archive" / "sha256").exists()
    opened = Path(tipwatch.run("archive", "open", str(pdf["id"]), "--path").stdout.strip())
    assert opened.suffix == ".pdf" and opened.read_bytes() == blob.read_bytes()
    assert tipwatch.json("archive", "verify")["ok"]
    blob.write_bytes(b"tampered")
    assert tipwatch.run("archive", "verify", check=False).returncode == 1

"""End to end through the real CLI: poll the replica, archive, match, email, and not again."""

from __future__ import annotations

from datetime import date

from tests.conftest import Replica, SmtpServer, Tipwatch, body_html, body_text, make_env


def _by_source(report: dict) -> dict[str, dict]:
    return {s["source"]: s for s in report["sources"]}


def test_poll_archives_newsletter_emails_once(tipwatch: Tipwatch, smtp: SmtpServer) -> None:
    tipwatch.run(
        "subscribe", "dubrovnik", "--query", 'Dubrovnik AND "forced labor"', "--notify", smtp.url()
    )

    first = _by_source(tipwatch.json("poll"))
    assert set(first) == {"onu-vienne", "osce", "unodc-news", "unodc-press", "unodc-glotip"}
    for name, report in first.items():
        assert report["status"] == "ok", (name, report["failures"])
        assert report["new"] > 0, name
    # The same n°23 PDFs are linked from onu-vienne and from the OSCE site: archived once.
    assert first["osce"]["unchanged"] >= 2

    documents = tipwatch.json("archive", "list", "--limit", "500")
    n23_en = [
        d
        for d in documents
        if d["kind"] == "pdf" and d["issue_number"] == 23 and d["language"] == "en"
    ]
    assert len(n23_en) == 1, n23_en
    pdf = n23_en[0]
    assert pdf["pages"] > 5
    assert pdf["published_at"].startswith("2025-03-12")
    assert "/IMG/pdf/newsletter_thb_n23_en.pdf" in pdf["url"]
    assert "?" not in pdf["canonical_url"]  # SPIP's ?NNNN/hash is not part of the identity

    messages = smtp.mailbox.wait_for(1)
    assert len(messages) == 1
    message = messages[0]
    assert "dubrovnik" in message["Subject"]
    assert "n°23" in message["Subject"]
    text = body_text(message)
    assert '"Dubrovnik"' in text and '"forced labor"' in text
    assert "p. " in text  # the page the term was found on
    assert f"http://tipwatch.test/documents/{pdf['id']}" in text
    html = body_html(message)
    assert "<mark>«Dubrovnik»</mark>" in html

    shown = tipwatch.json("archive", "show", str(pdf["id"]))
    assert shown["alerts"] == [
        {"subscription": "dubrovnik", "status": "sent", "terms": ["Dubrovnik", "forced labor"]}
    ]
    assert shown["keywords"], "keywords are extracted"
    assert len(shown["found_on"]) >= 2  # the EN article and the OSCE page

    second = _by_source(tipwatch.json("poll"))
    for name, report in second.items():
        assert report["status"] == "ok", (name, report["failures"])
        assert (report["new"], report["changed"], report["alerts"]) == (0, 0, 0), name
    assert len(smtp.mailbox.messages) == 1


def test_new_issue_is_discovered_and_alerted(replica: Replica, tmp_path, smtp: SmtpServer) -> None:
    tipwatch = Tipwatch(tmp_path / "data", make_env(tmp_path / "data", replica))
    tipwatch.run(
        "subscribe", "newsletter", "--query", "traite OR trafficking", "--notify", smtp.url()
    )
    tipwatch.run("poll", "--source", "onu-vienne")
    before = len(smtp.mailbox.wait_for(1))
    assert before > 0

    issue = replica.publish_issue(24, date(2025, 6, 20))
    report = _by_source(tipwatch.json("poll", "--source", "onu-vienne"))["onu-vienne"]
    # The FR and EN articles and their two PDFs are new; nothing else changed.
    assert report["new"] == 4, report
    assert report["changed"] == 0
    documents = tipwatch.json("archive", "list", "--source", "onu-vienne", "--limit", "4")
    assert {d["issue_number"] for d in documents} == {24}
    assert {d["language"] for d in documents} == {"en", "fr"}
    assert {d["kind"] for d in documents} == {"pdf", "html"}
    assert any(issue["en"]["pdf"]["path"] in d["url"] for d in documents)

    # One issue, four documents: one message, naming every document that matched.
    new = smtp.mailbox.messages[before:]  # the poll delivered before it returned
    assert [("n°24" in m["Subject"]) for m in new] == [True], [m["Subject"] for m in new]
    text = body_text(new[0])
    for language in ("English", "French"):
        assert f"{language}, PDF" in text and f"{language}, HTML" in text, text


def test_sources_command_reports_failures(tmp_path, replica: Replica) -> None:
    """A source that cannot be reached is reported with its reason; the others still run."""
    env = make_env(tmp_path / "data", replica)
    broken = replica.base_urls["osce"].rsplit(":", 1)[0] + ":9"  # nothing listens on port 9
    env["TIPWATCH_BASE_URLS"] = env["TIPWATCH_BASE_URLS"].replace(replica.base_urls["osce"], broken)
    tipwatch = Tipwatch(tmp_path / "data", env)
    report = _by_source(tipwatch.json("poll", "--source", "osce", "--source", "unodc-news"))
    assert report["osce"]["status"] == "failed"
    assert "ConnectError" in report["osce"]["error"]
    assert report["unodc-news"]["status"] == "ok"

    rows = {r["name"]: r for r in tipwatch.json("sources")}
    assert rows["osce"]["last_status"] == "failed"
    assert "ConnectError" in rows["osce"]["last_error"]
    assert rows["unodc-news"]["last_status"] == "ok"
    assert rows["unodc-glotip"]["last_status"] is None  # never polled
    table = tipwatch.run("sources").stdout
    assert "failed" in table and "never polled" in table


def test_two_concurrent_polls_archive_each_document_once(
    tipwatch: Tipwatch, smtp: SmtpServer
) -> None:
    """Two processes polling the same sources at once: no crash, no duplicate, one alert."""
    import json
    import subprocess

    from tests.conftest import BIN

    tipwatch.run("subscribe", "glotip", "--query", '"Global Report"', "--notify", smtp.url())
    args = [
        str(BIN / "tipwatch"),
        "poll",
        "--json",
        "--source",
        "unodc-glotip",
        "--source",
        "unodc-press",
        "--source",
        "osce",
    ]
    procs = [
        subprocess.Popen(
            args, env=tipwatch.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    for proc, (out, errors) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, errors
        for report in json.loads(out)["sources"]:
            assert report["status"] == "ok", (report["source"], report["failures"], report["error"])
    documents = tipwatch.json("archive", "list", "--limit", "500")
    hashes = [d["content_sha256"] for d in documents]
    assert len(hashes) == len(set(hashes))
    alerts = [
        a for d in documents for a in tipwatch.json("archive", "show", str(d["id"]))["alerts"]
    ]
    assert alerts and all(a["status"] == "sent" for a in alerts)
    assert len(smtp.mailbox.wait_for(len(alerts))) == len(alerts)

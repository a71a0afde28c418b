"""What a subscriber receives, end to end (real SMTP, the replica sites, the default settings):
a quiet first poll, then one message per publication, whatever its languages and files."""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.orm import Session

from tests.conftest import SmtpServer, Tipwatch, body_html, body_text, make_env
from tests.replica import Replica
from worker.storage.db import alembic_config, dispose_engines
from worker.storage.models import Alert, Document, Publication, SourceState, Subscription

EN_TEXT = (
    "Forced criminality is on the rise in South-East Europe.\n\n"
    "Victims of forced criminality are punished instead of protected; the non-punishment"
    " principle must apply.\n\n"
    "Prosecutors met in Belgrade to discuss joint investigations."
)
FR_TEXT = (
    "La délinquance forcée progresse en Europe du Sud-Est.\n\n"
    "Les victimes de délinquance forcée sont punies au lieu d'être protégées.\n\n"
    "Les procureurs se sont réunis à Belgrade."
)
BOTH = '"forced criminality" OR "délinquance forcée"'
FR_ONLY = '"délinquance forcée"'


@pytest.fixture
def quiet(tmp_path: Path, replica: Replica) -> Tipwatch:
    """TIP Watch with the default first poll (a quiet baseline), on a replica of its own."""
    data_dir = tmp_path / "data"
    env = make_env(data_dir, replica)
    del env["TIPWATCH_QUIET_FIRST_POLL"]  # the default
    return Tipwatch(data_dir, env)


def subscribe(tipwatch: Tipwatch, smtp: SmtpServer, name: str, query: str) -> None:
    tipwatch.run("subscribe", name, "--query", query, "--notify", smtp.url(f"{name}@example.org"))


def mail_for(smtp: SmtpServer, name: str) -> list[EmailMessage]:
    with smtp.mailbox.lock:
        return [m for m in smtp.mailbox.messages if f"{name}@example.org" in str(m["To"])]


def poll(tipwatch: Tipwatch) -> dict:
    report = tipwatch.json("poll", "--source", "onu-vienne")
    (source,) = report["sources"]
    assert source["status"] == "ok", source
    return source


def test_first_poll_is_quiet_then_one_message_per_issue(
    quiet: Tipwatch, replica: Replica, smtp: SmtpServer
) -> None:
    # Subscribed before the first poll, as on a fresh install; the back catalogue matches.
    subscribe(quiet, smtp, "both", BOTH)
    subscribe(quiet, smtp, "fronly", FR_ONLY)
    subscribe(quiet, smtp, "catalogue", "newsletter OR lettre")

    first = quiet.run("poll", "--source", "onu-vienne")
    assert "baseline:" in first.stdout and "no alerts" in first.stdout, first.stdout
    assert quiet.json("alerts") == []
    assert smtp.mailbox.messages == []
    archived = quiet.json("archive", "list", "--limit", "500")
    assert len(archived) > 20  # archived and searchable all the same
    assert quiet.json("archive", "search", "newsletter")

    # A new issue: FR and EN articles, each linking the EN and the FR PDF.
    replica.publish_issue(24, dt.date(2026, 10, 1), fr_text=FR_TEXT, en_text=EN_TEXT)
    second = poll(quiet)
    assert second["baseline"] is False and second["new"] == 4, second

    (both,) = mail_for(smtp, "both")
    assert "n°24" in str(both["Subject"]), both["Subject"]
    text = body_text(both)
    assert "English, PDF" in text and "French, PDF" in text, text
    assert "«Forced criminality»" in text and "«délinquance forcée»" in text, text
    assert "<mark>«délinquance forcée»</mark>" in body_html(both)
    assert "http://tipwatch.test/documents/" in text

    (fr_only,) = mail_for(smtp, "fronly")
    assert "n°24" in str(fr_only["Subject"])
    fr_text = body_text(fr_only)
    assert "French, PDF" in fr_text and "English, PDF" not in fr_text, fr_text

    # The catalogue subscriber matches the new issue's pages and files: one message too.
    (catalogue,) = mail_for(smtp, "catalogue")
    assert "n°24" in str(catalogue["Subject"])
    alerts = {a["subscription"]: a for a in quiet.json("alerts")}
    assert len(alerts["both"]["documents"]) == 2
    assert len(alerts["catalogue"]["documents"]) >= 3  # the articles and the PDFs

    # The archive knows the issue as one publication: both articles and both PDFs.
    publication = alerts["both"]["publication_id"]
    members = quiet.json("archive", "list", "--publication", str(publication))
    assert {(d["kind"], d["language"]) for d in members} == {
        ("html", "en"), ("html", "fr"), ("pdf", "en"), ("pdf", "fr")
    }  # fmt: skip
    shown = quiet.json("archive", "show", str(members[0]["id"]))
    assert shown["publication"]["id"] == publication and shown["publication"]["issue_number"] == 24
    assert len(shown["publication"]["documents"]) == 3

    # Nothing new: nothing sent.
    assert poll(quiet)["new"] == 0
    assert len(smtp.mailbox.messages) == 3

    # Subscribed now: the next issue only. Its French PDF goes online one poll after the rest.
    subscribe(quiet, smtp, "late", FR_ONLY)
    replica.publish_issue(25, dt.date(2026, 11, 1), fr_text=FR_TEXT, en_text=EN_TEXT)
    replica.withhold_pdf(25, "fr")
    poll(quiet)
    (both_25,) = [m for m in mail_for(smtp, "both") if "n°25" in str(m["Subject"])]
    assert "English, PDF" in body_text(both_25) and "French, PDF" not in body_text(both_25)
    assert not [m for m in mail_for(smtp, "fronly") if "n°25" in str(m["Subject"])]

    replica.release_pdf(25, "fr")
    assert poll(quiet)["new"] == 1
    # "both" was told about n°25 already: the French PDF joins its alert, no second message.
    assert len([m for m in mail_for(smtp, "both") if "n°25" in str(m["Subject"])]) == 1
    both_alert = next(
        a
        for a in quiet.json("alerts")
        if a["subscription"] == "both" and "n°25" in (a["publication"] or "")
    )
    assert len(both_alert["documents"]) == 2
    # The French-only subscribers hear of n°25 now, once; "late" never of n°24.
    for name in ("fronly", "late"):
        (message,) = [m for m in mail_for(smtp, name) if "n°25" in str(m["Subject"])]
        assert "French, PDF" in body_text(message)
    assert not [m for m in mail_for(smtp, "late") if "n°24" in str(m["Subject"])]

    assert poll(quiet)["new"] == 0
    counts = {name: len(mail_for(smtp, name)) for name in ("both", "fronly", "catalogue", "late")}
    assert counts == {"both": 2, "fronly": 2, "catalogue": 2, "late": 1}, counts


def test_a_source_added_later_has_its_own_baseline(
    quiet: Tipwatch, replica: Replica, smtp: SmtpServer
) -> None:
    subscribe(quiet, smtp, "glotip", '"Global Report"')
    poll(quiet)  # onu-vienne's baseline
    report = quiet.json("poll", "--source", "unodc-glotip")
    (glotip,) = report["sources"]
    assert glotip["baseline"] is True and glotip["new"] > 0, glotip
    assert quiet.json("alerts") == [] and smtp.mailbox.messages == []
    # The back catalogue stays one command away: one alert per publication.
    quiet.run(
        "subscribe",
        "glotip-back",
        "--query",
        '"Global Report"',
        "--notify",
        smtp.url("back@example.org"),
        "--backfill",
    )
    backfilled = quiet.json("alerts")
    assert backfilled and {a["subscription"] for a in backfilled} == {"glotip-back"}
    publications = [a["publication_id"] for a in backfilled]
    assert len(publications) == len(set(publications)), backfilled


def test_migration_gathers_an_issue_and_merges_its_alerts(tmp_path: Path) -> None:
    """An archive from before publications: the EN and FR PDFs of one issue each had an alert
    for the same subscription. After the upgrade: one publication, one alert naming both."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    config = alembic_config(url)
    engine = sa.create_engine(url)
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    try:
        with engine.connect() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0006")
            conn.commit()
        with engine.begin() as conn:  # the columns of 0006, not those of today's model
            for n, (lang, number, series) in enumerate(
                [("en", 24, "see"), ("fr", 24, "see"), ("en", None, None)], start=1
            ):
                conn.execute(
                    sa.insert(Document).values(
                        id=n, content_sha256=str(n) * 64, source="onu-vienne",
                        url=f"http://x/{n}", canonical_url=f"http://x/{n}", kind="pdf",
                        size_bytes=1, title=f"doc {n}", language=lang, issue_number=number,
                        series=series, archived_at=now,
                    )
                )  # fmt: skip
            conn.execute(sa.insert(Subscription).values(id=1, name="s", query="x"))
            for n in (1, 2, 3):
                conn.execute(
                    sa.insert(Alert).values(
                        subscription_id=1, document_id=n, status="sent", explanation={"n": n}
                    )
                )
            conn.execute(
                sa.insert(SourceState).values(
                    name="onu-vienne", last_poll_finished_at=now, last_status="ok"
                )
            )
        with engine.connect() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            conn.commit()
        with Session(engine) as session:
            publications = session.scalars(sa.select(Publication).order_by(Publication.id)).all()
            assert [sorted(d.id for d in p.documents) for p in publications] == [[1, 2], [3]]
            assert [(p.series, p.issue_number) for p in publications] == [("see", 24), (None, None)]
            alerts = session.scalars(sa.select(Alert).order_by(Alert.id)).all()
            assert [(a.document_id, a.publication_id) for a in alerts] == [
                (1, publications[0].id),
                (3, publications[1].id),
            ]
            assert [(m.document_id, m.explanation) for m in alerts[0].matches] == [
                (1, {"n": 1}),
                (2, {"n": 2}),
            ]
            state = session.get(SourceState, "onu-vienne")
            assert state is not None and state.baseline_at is not None  # its baseline is past
    finally:
        engine.dispose()
        dispose_engines()

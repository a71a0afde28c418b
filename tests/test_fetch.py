"""The fetch stage against the replica's real HTTP server: politeness and bad input."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.conftest import Replica
from worker.fetch import Fetcher, FetchError, FetchRecord
from worker.urls import netloc


@pytest.fixture
def fetcher(replica_session: Replica, tmp_path) -> Iterator[Fetcher]:
    records: list[FetchRecord] = []
    allowed = frozenset(
        netloc(u)
        for u in replica_session.base_urls.values()
        if u == replica_session.base_urls["onu-vienne"]
    )
    with Fetcher(
        allowed_netlocs=allowed,
        user_agent="TIPWatch-test/1 (+https://example.org)",
        timeout=2,
        max_bytes=2 * 1024 * 1024,
        retries=1,
        spool_dir=tmp_path,
        # robots.txt is recorded too (a request like any other); these tests count the pages'
        on_request=lambda r: None if r.url.endswith("/robots.txt") else records.append(r),
    ) as client:
        client.records = records  # type: ignore[attr-defined]
        yield client


def url(replica: Replica, path: str) -> str:
    return replica.base_urls["onu-vienne"] + path


def test_conditional_get_returns_304_without_body(
    fetcher: Fetcher, replica_session: Replica
) -> None:
    pdf = url(replica_session, "/IMG/pdf/newsletter_thb_n23_en.pdf?5121/abc")
    first = fetcher.get(pdf)
    assert first.status_code == 200 and first.read_bytes().startswith(b"%PDF-")
    assert first.etag and first.last_modified
    again = fetcher.get(pdf, etag=first.etag, last_modified=first.last_modified)
    assert again.not_modified and again.path is None
    assert fetcher.records[-1].status_code == 304 and fetcher.records[-1].bytes_received == 0
    sent = [h for h in replica_session.hits if h.path.startswith("/IMG/pdf/newsletter_thb_n23_en")]
    assert sent[-1].headers["if-none-match"] == first.etag
    assert sent[-1].headers["user-agent"].startswith("TIPWatch-test/1")
    first.discard()


def test_foreign_and_internal_hosts_are_never_requested(
    fetcher: Fetcher, replica_session: Replica
) -> None:
    before = replica_session.hit_count(site="osce")
    for target in (
        replica_session.base_urls["osce"] + "/",
        "http://169.254.169.254/latest/",
        "http://localhost:6379/",
    ):
        with pytest.raises(FetchError, match="not in this source's allowed hosts"):
            fetcher.get(target)
    assert replica_session.hit_count(site="osce") == before
    assert fetcher.records == []


def test_redirect_loop_is_an_error(fetcher: Fetcher, replica_session: Replica) -> None:
    with pytest.raises(FetchError, match="redirect loop"):
        fetcher.get(url(replica_session, "/_fault/redirect-loop"))


def test_server_error_is_retried_then_reported(fetcher: Fetcher, replica_session: Replica) -> None:
    with pytest.raises(FetchError, match="HTTP 500") as caught:
        fetcher.get(url(replica_session, "/_fault/500"))
    assert caught.value.retryable
    assert [r.status_code for r in fetcher.records] == [500, 500]  # one retry


def test_retry_after_is_honoured(fetcher: Fetcher, replica_session: Replica) -> None:
    replica_session.reset_faults()
    result = fetcher.get(url(replica_session, "/_fault/retry-after?t=fetch-test"))
    assert result.status_code == 200
    assert [r.status_code for r in fetcher.records] == [503, 200]


def test_retry_waits_exactly_the_retry_after(
    fetcher: Fetcher, replica_session: Replica, caplog: pytest.LogCaptureFixture
) -> None:
    replica_session.reset_faults()
    with caplog.at_level(logging.INFO, logger="worker.fetch"):
        fetcher.get(url(replica_session, "/_fault/retry-after?t=exact-wait")).discard()
    waits = [r.args[0] for r in caplog.records if r.msg.startswith("retrying in")]  # type: ignore[index]
    assert waits == [1.0]  # the header says 1 s: no backoff, no jitter


def test_backoff_without_retry_after_is_jittered_exponential(
    fetcher: Fetcher, replica_session: Replica, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="worker.fetch"), pytest.raises(FetchError):
        fetcher.get(url(replica_session, "/_fault/500"))
    waits = [r.args[0] for r in caplog.records if r.msg.startswith("retrying in")]  # type: ignore[index]
    assert len(waits) == 1 and 1.0 <= waits[0] <= 2.0  # first step: 1 s plus up to 1 s jitter


def test_client_error_is_not_retried(fetcher: Fetcher, replica_session: Replica) -> None:
    with pytest.raises(FetchError, match="HTTP 404") as caught:
        fetcher.get(url(replica_session, "/no-such-page"))
    assert caught.value.status_code == 404 and not caught.value.retryable
    assert [r.status_code for r in fetcher.records] == [404]


def test_timeout_is_reported(fetcher: Fetcher, replica_session: Replica) -> None:
    with pytest.raises(FetchError, match="timed out"):
        fetcher.get(url(replica_session, "/_fault/slow?seconds=4"))


def test_oversized_download_is_refused_and_not_kept(
    fetcher: Fetcher, replica_session: Replica, tmp_path
) -> None:
    with pytest.raises(FetchError, match="too large"):
        fetcher.get(url(replica_session, "/_fault/big.pdf?mb=5"))
    assert list(tmp_path.glob("fetch-*")) == []


def test_robots_txt_disallow_is_obeyed(replica: Replica, tmp_path) -> None:
    replica.set_robots("onu-vienne", "User-agent: *\nDisallow: /IMG/\n")
    allowed = frozenset({netloc(replica.base_urls["onu-vienne"])})
    with Fetcher(allowed_netlocs=allowed, user_agent="TIPWatch/test", spool_dir=tmp_path) as f:
        with pytest.raises(FetchError, match=r"robots\.txt"):
            f.get(url(replica, "/IMG/pdf/newsletter_thb_n23_en.pdf"))
        assert f.get(url(replica, "/-Lettres-d-information-")).status_code == 200
    assert replica.hit_count(site="onu-vienne", path_prefix="/IMG/") == 0

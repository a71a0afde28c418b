"""Email self-service on the web page (issue 18): subscribe in Chromium, confirm by the
emailed link, get an alert with working manage and one-click unsubscribe links, then nothing
more; and one test per abuse item (CSRF, rate limits, bad queries, sizes, stored XSS,
expired and reused links, address enumeration, operator access, domains, switched off)."""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.archive_site import MiniSite, mini_tipwatch, running_web
from tests.conftest import SmtpServer, Tipwatch, body_html, body_text, free_port, make_env
from tests.replica import Replica
from tests.test_browser import browser_page  # noqa: F401 (a fixture)
from tests.test_publications import EN_TEXT, FR_TEXT

SECRET = "test-secret-key-of-some-length"
OPERATOR = ("operator", "op-pass-123")


def self_service_env(smtp: SmtpServer, **extra: str) -> dict[str, str]:
    return {
        "TIPWATCH_SELF_SERVICE_EMAIL": "true",
        "TIPWATCH_MAIL_URL": f"mailto://{smtp.host}:{smtp.port}?from=tipwatch@example.org",
        "TIPWATCH_SECRET_KEY": SECRET,
        "TIPWATCH_OPERATOR_PASSWORD": OPERATOR[1],
        **extra,
    }


def links(message: EmailMessage) -> list[str]:
    return re.findall(r"https?://[^\s\"<>]+", body_text(message))


def mail_to(smtp: SmtpServer, address: str) -> list[EmailMessage]:
    with smtp.mailbox.lock:
        return [m for m in smtp.mailbox.messages if address in str(m["To"])]


# -- the done-when test: Chromium, real SMTP, the replica ---------------------------------------


def test_subscribe_confirm_alert_manage_and_one_click_unsubscribe(
    browser_page: Any,  # noqa: F811
    tmp_path: Path,
    replica: Replica,
    smtp: SmtpServer,
    artifacts: Path,
) -> None:
    from playwright.sync_api import Page, expect

    page: Page = browser_page
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data = tmp_path / "data"
    env = make_env(data, replica, **self_service_env(smtp, TIPWATCH_WEB_BASE_URL=base))
    del env["TIPWATCH_QUIET_FIRST_POLL"]  # the default: a quiet baseline
    tipwatch = Tipwatch(data, env)
    tipwatch.run("poll", "--source", "onu-vienne")  # the archive, for the preview
    address = "analyst@ngo.example"
    with running_web(tipwatch, port):
        page.goto(base + "/subscribe")
        page.fill("textarea[name=query]", '"forced criminality" OR traite')
        expect(page.locator("#preview li.preview-hit").first).to_be_visible(timeout=15_000)
        expect(page.locator("#preview mark").first).to_be_visible()
        page.fill("input[name=email]", address)
        page.screenshot(path=str(artifacts / "web_subscribe.png"), full_page=True)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Check your email")
        assert tipwatch.json("status")["subscriptions"]["pending_confirmation"] == 1

        (confirmation,) = smtp.mailbox.wait_for(1)
        assert address in str(confirmation["To"])
        (confirm_url,) = [u for u in links(confirmation) if "/confirm/" in u]
        page.goto(confirm_url)
        expect(page.locator("code.query")).to_have_text('"forced criminality" OR traite')
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Subscription confirmed")
        assert tipwatch.json("status")["subscriptions"]["pending_confirmation"] == 0

        replica.publish_issue(24, dt.date(2026, 10, 1), fr_text=FR_TEXT, en_text=EN_TEXT)
        tipwatch.run("poll", "--source", "onu-vienne")
        alerts = [m for m in smtp.mailbox.wait_for(2) if "n°24" in str(m["Subject"])]
        (alert,) = alerts
        assert address in str(alert["To"])
        assert "«Forced criminality»" in body_text(alert)
        header = str(alert["List-Unsubscribe"])
        assert str(alert["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
        unsubscribe_url = header.strip("<>")
        assert unsubscribe_url.startswith(base + "/unsubscribe/"), header
        (manage_url,) = [u for u in links(alert) if "/manage/" in u]
        assert unsubscribe_url in body_html(alert)

        page.goto(manage_url)
        expect(page.locator("h1")).to_have_text(f"Subscriptions of {address}")
        expect(page.locator("form.manage textarea")).to_have_value('"forced criminality" OR traite')
        page.screenshot(path=str(artifacts / "web_manage.png"), full_page=True)

        # One click, from outside the browser: the mail client's POST (RFC 8058).
        answer = httpx.post(unsubscribe_url, data={"List-Unsubscribe": "One-Click"}, timeout=10)
        assert answer.status_code == 200 and "Unsubscribed" in answer.text

        replica.publish_issue(25, dt.date(2026, 11, 1), fr_text=FR_TEXT, en_text=EN_TEXT)
        tipwatch.run("poll", "--source", "onu-vienne")
        assert len(mail_to(smtp, address)) == 2  # the confirmation and one alert, no more
        assert tipwatch.json("subscriptions") == []


# -- one test per abuse item, on the app in process ---------------------------------------------


@pytest.fixture
def site_tipwatch(mini_site: MiniSite, tmp_path: Path, smtp: SmtpServer) -> Tipwatch:
    tipwatch = mini_tipwatch(mini_site, tmp_path, **self_service_env(smtp))
    tipwatch.run("poll", "--no-notify")
    return tipwatch


def web_client(tipwatch: Tipwatch, **overrides: Any) -> Iterator[TestClient]:
    from worker.storage.db import dispose_engines
    from worker.web import create_app

    settings = tipwatch.settings().model_copy(update=overrides)
    try:
        with TestClient(create_app(settings)) as client:
            yield client
    finally:
        dispose_engines()


@pytest.fixture
def web(site_tipwatch: Tipwatch) -> Iterator[TestClient]:
    yield from web_client(site_tipwatch)


def csrf_of(client: TestClient, path: str = "/subscribe") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def subscribe(client: TestClient, email: str, query: str = "smuggling", **extra: str) -> Any:
    form = {"query": query, "email": email, "delivery": "immediate", **extra}
    form.setdefault("csrf", csrf_of(client))
    return client.post("/subscribe", data=form)


def test_csrf_token_is_required(web: TestClient, smtp: SmtpServer) -> None:
    csrf_of(web)
    refused = web.post("/subscribe", data={"query": "smuggling", "email": "a@example.org"})
    assert refused.status_code == 403 and "expired" in refused.text
    forged = subscribe(web, "a@example.org", csrf="forged-token")
    assert forged.status_code == 403
    other = TestClient(web.app)  # another browser: no cookie, a token copied from elsewhere
    stolen = other.post(
        "/subscribe", data={"query": "x", "email": "a@example.org", "csrf": csrf_of(web)}
    )
    assert stolen.status_code == 403
    assert smtp.mailbox.messages == []
    assert subscribe(web, "a@example.org").status_code == 200
    assert len(smtp.mailbox.wait_for(1)) == 1


def test_rate_limit_per_client(site_tipwatch: Tipwatch, smtp: SmtpServer) -> None:
    for client in web_client(site_tipwatch, subscribe_per_client_hour=3):
        answers = [subscribe(client, f"u{n}@example.org").status_code for n in range(5)]
        assert answers == [200, 200, 200, 429, 429], answers
        assert len(smtp.mailbox.wait_for(3)) == 3


def test_rate_limit_per_address_counts_confirmation_emails(
    site_tipwatch: Tipwatch, smtp: SmtpServer
) -> None:
    for client in web_client(site_tipwatch, subscribe_per_address_day=2):
        answers = [subscribe(client, "same@example.org", f"smuggling{n}") for n in range(4)]
        assert {a.status_code for a in answers} == {200}
        assert len({a.text for a in answers}) == 1  # nothing says a limit was reached
        smtp.mailbox.wait_for(3, timeout=3)
        assert len(mail_to(smtp, "same@example.org")) == 2
        assert subscribe(client, "Other@EXAMPLE.org").status_code == 200
        assert len(smtp.mailbox.wait_for(3)) == 3


def test_invalid_query_has_the_cli_pointer(site_tipwatch: Tipwatch, web: TestClient) -> None:
    query = "trafficking AND (minors"
    answer = subscribe(web, "q@example.org", query)
    cli = site_tipwatch.run(
        "subscribe", "x", "--query", query, "--notify", "json://127.0.0.1:9/", check=False
    )
    assert answer.status_code == 422 and cli.returncode != 0
    pointer = "trafficking AND (minors\n                         ^"
    assert pointer in (cli.stdout + cli.stderr)
    assert "missing &#39;)&#39; at position 24" in answer.text and pointer in answer.text
    preview = web.get("/subscribe/preview", params={"query": query})
    assert pointer in preview.text


def test_size_limits(web: TestClient, smtp: SmtpServer) -> None:
    long_query = subscribe(web, "s@example.org", "trafficking " * 100)
    assert long_query.status_code == 422 and "longer than 1000" in long_query.text
    huge = web.post(
        "/subscribe", data={"query": "x" * 20000, "email": "s@example.org", "csrf": csrf_of(web)}
    )
    assert huge.status_code == 413
    long_address = subscribe(web, "a" * 250 + "@example.org")
    assert long_address.status_code == 422
    assert smtp.mailbox.messages == []


def test_stored_xss_is_escaped(site_tipwatch: Tipwatch, web: TestClient, smtp: SmtpServer) -> None:
    hostile = '"<script>alert(1)</script>" OR "<img src=x onerror=alert(2)>"'
    assert subscribe(web, "x@example.org", hostile).status_code == 200
    (confirmation,) = smtp.mailbox.wait_for(1)
    assert "<script>" not in body_html(confirmation)
    assert "&lt;script&gt;" in body_html(confirmation)
    (confirm_url,) = [u for u in links(confirmation) if "/confirm/" in u]
    path = confirm_url.removeprefix("http://tipwatch.test")
    page = web.get(path)
    assert "<script>alert" not in page.text and "&lt;script&gt;alert(1)" in page.text
    (manage_url,) = [u for u in links(confirmation) if "/manage/" in u]
    manage = web.get(manage_url.removeprefix("http://tipwatch.test"))
    assert manage.status_code == 200
    assert "<img src=x" not in manage.text and "&lt;img src=x onerror" in manage.text


def confirmation_path(smtp: SmtpServer, count: int = 1) -> str:
    message = smtp.mailbox.wait_for(count)[count - 1]
    (url,) = [u for u in links(message) if "/confirm/" in u]
    return url.removeprefix("http://tipwatch.test")


def test_reused_and_expired_links_have_a_clear_page(
    site_tipwatch: Tipwatch, web: TestClient, smtp: SmtpServer
) -> None:
    assert subscribe(web, "r@example.org").status_code == 200
    path = confirmation_path(smtp)
    csrf = csrf_of(web)
    assert web.post(path, data={"csrf": csrf}).status_code == 200
    again = web.post(path, data={"csrf": csrf})
    assert again.status_code == 410 and "already used" in again.text
    assert web.get(path).status_code == 410
    unknown = web.get("/confirm/not-a-token")
    assert unknown.status_code == 404 and "not valid" in unknown.text

    for late in web_client(site_tipwatch, confirm_link_hours=0.0001):  # 0.36 s
        assert subscribe(late, "e@example.org").status_code == 200
        path = confirmation_path(smtp, 2)
        import time

        time.sleep(0.5)
        expired = late.get(path)
        assert expired.status_code == 410 and "expired" in expired.text

    from worker.signing import sign

    old = sign(SECRET, "manage", "r@example.org", -10)
    assert web.get(f"/manage/{old}").status_code == 410
    forged = sign("another-key", "manage", "r@example.org", 3600)
    assert web.get(f"/manage/{forged}").status_code == 404
    # A link signed for one purpose never opens another.
    unsubscribe_as_manage = sign(SECRET, "unsubscribe", "r@example.org", 3600)
    assert web.get(f"/manage/{unsubscribe_as_manage}").status_code == 404


def test_no_address_enumeration(web: TestClient, smtp: SmtpServer) -> None:
    first = subscribe(web, "known@example.org")
    path = confirmation_path(smtp)
    web.post(path, data={"csrf": csrf_of(web)})
    known = subscribe(web, "known@example.org")
    fresh = subscribe(web, "fresh@example.org")
    assert first.status_code == known.status_code == fresh.status_code == 200
    assert known.text.replace("known", "X") == fresh.text.replace("fresh", "X")
    assert first.text == known.text


def test_subscriber_sees_only_their_own(web: TestClient, smtp: SmtpServer) -> None:
    subscribe(web, "one@example.org", "smuggling")
    subscribe(web, "two@example.org", "exploitation")
    messages = smtp.mailbox.wait_for(2)
    one = next(m for m in messages if "one@" in str(m["To"]))
    (manage_url,) = [u for u in links(one) if "/manage/" in u]
    signed = manage_url.rsplit("/", 1)[1]
    page = web.get(f"/manage/{signed}")
    assert "smuggling" in page.text and "exploitation" not in page.text
    # The other address's subscription cannot be changed with this link.
    ids = [int(i) for i in re.findall(r'id="subscription-(\d+)"', page.text)]
    assert len(ids) == 1
    answer = web.post(
        f"/manage/{signed}/{ids[0] + 1}", data={"csrf": csrf_of(web), "action": "delete"}
    )
    assert answer.status_code == 404
    paused = web.post(
        f"/manage/{signed}/{ids[0]}",
        data={"csrf": csrf_of(web), "action": "pause"},
        follow_redirects=True,
    )
    assert paused.status_code == 200 and "paused" in paused.text
    assert "Resume" in paused.text


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_operator_pages_need_credentials(site_tipwatch: Tipwatch, web: TestClient) -> None:
    for path in ("/alerts", "/api/alerts", "/status", "/api/status"):
        closed = web.get(path)
        assert closed.status_code == 401, path
        assert closed.headers["WWW-Authenticate"].startswith("Basic")
        assert web.get(path, headers=basic("operator", "wrong")).status_code == 401
        assert web.get(path, headers=basic(*OPERATOR)).status_code == 200, path
    assert web.get("/").status_code == 200  # the archive stays public
    assert web.get("/api/documents").status_code == 200
    # A proxy's user header counts only from a trusted proxy (TestClient's host is "testclient").
    for client in web_client(site_tipwatch, auth_proxy_header="X-Remote-User"):
        assert client.get("/status", headers={"X-Remote-User": "alice"}).status_code == 401
    for client in web_client(
        site_tipwatch, auth_proxy_header="X-Remote-User", trusted_proxies=["10.0.0.0/8"]
    ):
        assert client.get("/status", headers={"X-Remote-User": "alice"}).status_code == 401
    # No password configured: closed, whatever is sent.
    for client in web_client(site_tipwatch, operator_password=None):
        assert client.get("/api/status", headers=basic("operator", "")).status_code == 401


def test_proxy_header_from_a_trusted_proxy(site_tipwatch: Tipwatch) -> None:
    env = dict(site_tipwatch.env)
    env.update(
        {"TIPWATCH_AUTH_PROXY_HEADER": "X-Remote-User", "TIPWATCH_TRUSTED_PROXIES": "127.0.0.1"}
    )
    with running_web(Tipwatch(site_tipwatch.data_dir, env)) as base:
        assert httpx.get(f"{base}/status", timeout=10).status_code == 401
        trusted = httpx.get(f"{base}/status", headers={"X-Remote-User": "alice"}, timeout=10)
        assert trusted.status_code == 200 and "Status" in trusted.text
    env["TIPWATCH_TRUSTED_PROXIES"] = "10.1.2.3"
    with running_web(Tipwatch(site_tipwatch.data_dir, env)) as base:
        untrusted = httpx.get(f"{base}/api/status", headers={"X-Remote-User": "alice"}, timeout=10)
        assert untrusted.status_code == 401


def test_allowed_domains(site_tipwatch: Tipwatch, smtp: SmtpServer) -> None:
    for client in web_client(site_tipwatch, email_domains=["ngo.example"]):
        refused = subscribe(client, "someone@gmail.example")
        assert refused.status_code == 422 and "ngo.example" in refused.text
        assert subscribe(client, "staff@NGO.example").status_code == 200
        (message,) = smtp.mailbox.wait_for(1)
        assert "staff@ngo.example" in str(message["To"])


def test_self_service_switched_off(site_tipwatch: Tipwatch, smtp: SmtpServer) -> None:
    for client in web_client(site_tipwatch, self_service_email=False):
        assert client.get("/subscribe").status_code == 404
        assert client.post("/subscribe", data={"query": "x"}).status_code == 404
        assert client.get("/subscribe/preview", params={"query": "x"}).status_code == 404
        assert client.get("/confirm/abc").status_code == 404
        assert 'href="/subscribe"' not in client.get("/").text
    assert smtp.mailbox.messages == []


def test_operator_lists_and_removes_self_service_subscriptions(
    site_tipwatch: Tipwatch, web: TestClient, smtp: SmtpServer
) -> None:
    assert subscribe(web, "pending@example.org").status_code == 200
    (row,) = site_tipwatch.json("subscriptions")
    assert (row["channel"], row["owner"], row["confirmed"]) == (
        "email", "pending@example.org", False
    )  # fmt: skip
    listing = site_tipwatch.run("subscriptions").stdout
    assert "email: pending@example.org (awaiting confirmation)" in listing, listing
    status = site_tipwatch.run("status").stdout
    assert "email subscriptions awaiting confirmation: 1" in status, status
    page = web.get("/status", headers=basic(*OPERATOR))
    assert "awaiting confirmation: 1" in page.text
    # nothing reaches an address before it confirms, not even the operator's test message
    tested = site_tipwatch.run("subscriptions", "test", row["name"], check=False)
    assert tested.returncode == 1 and "awaits its owner's confirmation" in tested.stderr
    assert len(mail_to(smtp, "pending@example.org")) == 1  # the confirmation email only
    site_tipwatch.run("unsubscribe", row["name"])
    assert site_tipwatch.json("subscriptions") == []
    gone = web.get(confirmation_path(smtp))  # its confirmation link opens nothing now
    assert gone.status_code == 404


def test_unsubscribe_page_asks_and_one_click_post_needs_no_cookie(
    site_tipwatch: Tipwatch, web: TestClient, smtp: SmtpServer
) -> None:
    from worker.signing import unsubscribe_link

    assert subscribe(web, "leaving@example.org").status_code == 200
    (row,) = site_tipwatch.json("subscriptions")
    url = unsubscribe_link(site_tipwatch.settings(), row["id"])
    path = url.removeprefix("http://tipwatch.test")
    page = web.get(path)  # a link scanner's GET changes nothing
    assert page.status_code == 200 and "<button" in page.text
    assert len(site_tipwatch.json("subscriptions")) == 1
    tampered = path[:-3] + ("aaa" if not path.endswith("aaa") else "bbb")
    assert TestClient(web.app).post(tampered).status_code == 404
    outside = TestClient(web.app)  # a mail client: no cookie, no CSRF token
    done = outside.post(path, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "Unsubscribed" in done.text
    assert site_tipwatch.json("subscriptions") == []
    assert outside.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200

"""The web UI in a real headless Chromium (Debian's package, driven by Playwright): search
with htmx, highlights, a document page, and a hostile archived page that must not run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Tipwatch

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser_page() -> Iterator[object]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: run .ci/apt-packages"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            yield page
        finally:
            browser.close()


def test_search_and_hostile_page_in_chromium(
    browser_page: object, mini_web: tuple[Tipwatch, str], artifacts: Path
) -> None:
    from playwright.sync_api import Page, expect

    page: Page = browser_page  # type: ignore[assignment]
    tipwatch, base = mini_web
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    page.goto(base + "/")
    expect(page.locator("tr.result").first).to_be_visible()
    # Typing searches through htmx: the results swap in place, the URL follows.
    page.fill("input[name=q]", "exploitations")
    expect(page.locator("#results mark").first).to_have_text("exploitation", timeout=10_000)
    assert "q=exploitations" in page.url
    page.select_option("select[name=language]", "fr")
    expect(page.locator("#results tr.result")).to_have_count(2, timeout=10_000)
    page.screenshot(path=str(artifacts / "web_search.png"), full_page=True)

    hostile = next(d for d in tipwatch.json("archive", "list") if d["title"] == "Smuggling routes")
    page.goto(f"{base}/documents/{hostile['id']}")
    expect(page.locator("h1")).to_have_text("Smuggling routes")
    expect(page.locator("pre.page")).to_contain_text("<script>alert('xss')</script>")
    assert page.title() != "PWNED"
    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
    expect(page.locator("text=smuggling").first).to_be_visible()
    page.screenshot(path=str(artifacts / "web_document.png"), full_page=True)
    assert not [e for e in errors if "Content Security Policy" in e], errors

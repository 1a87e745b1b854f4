"""The campaign page in a real browser: Debian's headless Chromium, driven by Playwright's
Python API (never `playwright install`: the browser is the system's, which
`make system-packages` installs). A missing Chromium fails these tests; it never skips them.

Screenshots of the page in each language and of the badges are left in tests/artifacts/
(or COALITION_TEST_ARTIFACTS) to be looked at."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from bot.core.i18n import Catalogs
from bot.core.settings import Settings
from tests.conftest import make_settings
from tests.web_harness import Served, artifacts, serve

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CATALOGS = Catalogs.load()


def chromium() -> str:
    """The system's Chromium; its absence fails the test (never a skip)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make system-packages` installs chromium")
    return str(CHROMIUM)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    path = chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=path, args=ARGS, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[Served]:
    async with serve(settings) as running:
        yield running


async def open_live(browser: Browser, url: str, **options: object) -> Page:
    """A tab showing the page with its live connection open."""
    page = await browser.new_page(**options)  # type: ignore[arg-type]
    await page.goto(url)
    await page.wait_for_selector("body[data-live=open]", timeout=5000)
    return page


async def text_of(page: Page, selector: str) -> str:
    return str(await page.text_content(selector))


async def test_a_console_pledge_moves_the_open_page_within_two_seconds(
    browser: Browser, served: Served
) -> None:
    page = await open_live(browser, served.url + "en/")
    assert await text_of(page, "#pledged") == "0"
    assert await page.get_attribute("#counts", "aria-live") == "polite"
    await page.evaluate("window.sameDocument = true")

    started = time.monotonic()
    await served.pledge("amina")
    # (Polled from outside the page: its Content-Security-Policy forbids evaluated strings.)
    await expect(page.locator("#pledged")).to_have_text("1", timeout=2000)
    assert time.monotonic() - started < 2.0
    assert await page.evaluate("window.sameDocument") is True  # no reload
    line = " ".join((await text_of(page, "#pledged-line")).split())
    assert line == "1 volunteer has pledged to freeze their accounts"
    assert await page.evaluate("document.getElementById('bar').value") == 1


async def test_the_arabic_page_is_right_to_left_with_arabic_numbers(
    browser: Browser, served: Served
) -> None:
    await served.seed_pledges(1233)
    page = await open_live(browser, served.url + "ar/")
    assert await page.evaluate("document.documentElement.dir") == "rtl"
    assert await page.evaluate("document.documentElement.lang") == "ar"
    arabic = CATALOGS.get("ar")
    assert await text_of(page, "#pledged") == arabic.number(1233)
    direction = await page.evaluate(
        "getComputedStyle(document.getElementById('pledged-line')).direction"
    )
    assert direction == "rtl"

    await served.pledge("karim", hint="ar")
    await expect(page.locator("#pledged")).to_have_text(arabic.number(1234), timeout=2000)
    assert "تعهّد" in await text_of(page, "#pledged-line")


async def test_screenshots_of_the_three_languages(browser: Browser, tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        web_telegram_username="CoalitionBot",
        web_discord_invite="https://discord.gg/stophate",
    )
    folder = artifacts()
    async with serve(settings) as served:
        await served.seed_pledges(1234)
        for language in ("ar", "en", "fr"):
            page = await open_live(
                browser, served.url + f"{language}/", viewport={"width": 800, "height": 1000}
            )
            assert await text_of(page, "#pledged") == CATALOGS.get(language).number(1234)
            assert await page.locator(".links a").count() == 2
            shot = folder / f"page-{language}.png"
            await page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 20_000, language
            heading = await page.evaluate(
                "document.querySelector('h1').getBoundingClientRect().width"
            )
            assert heading > 100
            await page.close()


async def test_the_badge_renders_in_chromium(browser: Browser, served: Served) -> None:
    await served.seed_pledges(1234)
    folder = artifacts()
    page = await browser.new_page()
    for language in ("ar", "en", "fr"):
        url = served.url + f"badge.svg?lang={language}"
        await page.goto(url)
        fits = await page.evaluate(
            """() => [...document.querySelectorAll('text')].map(t => {
                const box = document.getElementById(t.id + '-box');
                return [t.getComputedTextLength(), box.width.baseVal.value];
            })"""
        )
        for drawn, room in fits:
            assert 0 < drawn <= room - 4, (language, drawn, room)  # shaped, and inside
        # As an <img> in an HTML page (the campaign page: its policy lets it load images
        # from its own server).
        await page.goto(served.url + "en/")
        natural = await page.evaluate(
            """async (src) => {
                const img = new Image();
                img.src = src;
                await img.decode();
                return [img.naturalWidth, img.naturalHeight];
            }""",
            url,
        )
        await page.goto(url)
        width = await page.evaluate("document.documentElement.width.baseVal.value")
        assert natural == [int(width), 24], language
        shot = folder / f"badge-{language}.png"
        await page.locator("svg").screenshot(path=str(shot))
        assert shot.stat().st_size > 500


async def test_without_javascript_the_page_still_shows_the_count(
    browser: Browser, served: Served
) -> None:
    await served.pledge("amina", "karim")
    await served.site.hub.flush()
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    await page.goto(served.url + "fr/")
    assert await text_of(page, "#pledged") == "2"
    assert "personnes se sont engagées" in await text_of(page, "#pledged-line")
    assert not await page.is_visible("#copy")  # nothing that would not work
    await context.close()


async def test_the_copy_button_works_from_the_keyboard(browser: Browser, served: Served) -> None:
    context = await browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = await context.new_page()
    await page.goto(served.url + "fr/")
    for _ in range(20):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.id") == "copy":
            break
    else:
        raise AssertionError("the copy button cannot be reached with Tab")
    await page.keyboard.press("Enter")
    await expect(page.locator("#copied")).to_have_text("Copié.")
    message = await text_of(page, "#message")
    assert "#StopHateForProfit" in message
    assert await page.evaluate("navigator.clipboard.readText()") == message
    await context.close()


async def test_a_message_with_markup_shows_as_text(browser: Browser, tmp_path: Path) -> None:
    hostile = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"> & co'
    async with serve(make_settings(tmp_path, campaign_message_en=hostile)) as running:
        page = await open_live(browser, running.url + "en/")
        assert await text_of(page, "#message") == hostile
        assert await page.evaluate("window.pwned") is None
        assert await page.locator("#message img").count() == 0


async def test_the_countdown_speaks_the_readers_time_zone(browser: Browser, tmp_path: Path) -> None:
    # A freeze 40 days from now (the browser counts with its own clock), at 08:00 UTC:
    # 17:00 in Tokyo, where this reader is.
    start = (datetime.now(UTC) + timedelta(days=40)).replace(
        hour=8, minute=0, second=0, microsecond=0
    )
    settings = make_settings(
        tmp_path,
        campaign_start=start.isoformat(),
        campaign_end=(start + timedelta(hours=24)).isoformat(),
    )
    async with serve(settings) as running:
        page = await open_live(browser, running.url + "en/", timezone_id="Asia/Tokyo")
        when = " ".join((await text_of(page, "#when")).replace("\u202f", " ").split())
        tokyo = start.astimezone(ZoneInfo("Asia/Tokyo"))
        assert f"{tokyo:%b} {tokyo.day}, {tokyo.year}, 5:00 PM" in when, when
        assert "Japan Standard Time" in when, when
        assert await text_of(page, "#phase") == "Time left until the freeze starts"
        assert await page.is_visible("#countdown")
        assert int(await text_of(page, "#cd-d")) in (39, 40)


async def test_a_community_page_moves_with_its_own_count(browser: Browser, served: Served) -> None:
    console = served.console
    for line in (":group", ":as nadia", ":admin on", "/webpage on", ":admin off"):
        await console.feed(line)
    address = re.findall(r"http://127\.0\.0\.1:\d+/c/[A-Za-z0-9_-]+/", served.out.getvalue())
    assert len(address) == 1
    await served.pledge("amina", "karim", "lea", "omar")
    await served.site.hub.flush()
    page = await open_live(browser, address[0] + "en/")
    line = " ".join((await text_of(page, "#community-line")).split())
    assert line == "Fewer than 5 volunteers have pledged in this community"
    await served.pledge("sara")
    # (Both say 5: "fewer than 5", then 5. The sentence tells them apart.)
    await expect(page.locator("#community-line")).to_have_text(
        re.compile(r"^\s*5\s+volunteers have pledged in this community\s*$"), timeout=2000
    )
    assert await text_of(page, "#pledged") == "5"
    await page.screenshot(path=str(artifacts() / "community-en.png"), full_page=True)

"""A wrong COALITION_WEB_* setting stops start-up with one line naming it; the console
serves the campaign page on 127.0.0.1 and says where, once."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

import aiohttp
import pytest

from bot.core.settings import load_settings
from tests.conftest import eventually
from tests.test_settings import assert_named
from tests.web_harness import console_environment, console_refusal


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("COALITION_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env from the checkout


@pytest.mark.parametrize(
    ("env", "setting", "says"),
    [
        ({"COALITION_WEB_PUBLIC_URL": "count.example.org"}, "COALITION_WEB_PUBLIC_URL", "public"),
        (
            {"COALITION_WEB_PUBLIC_URL": "https://count.example.org/?a=1"},
            "COALITION_WEB_PUBLIC_URL",
            "no query",
        ),
        (
            {"COALITION_WEB_TELEGRAM_USERNAME": "bad name!"},
            "COALITION_WEB_TELEGRAM_USERNAME",
            "username",
        ),
        (
            {"COALITION_WEB_DISCORD_INVITE": 'https://discord.gg/x"><script>'},
            "COALITION_WEB_DISCORD_INVITE",
            "invite link",
        ),
        (
            {"COALITION_WEB_DISCORD_INVITE": "https://evil.example/invite"},
            "COALITION_WEB_DISCORD_INVITE",
            "discord.gg",
        ),
        ({"COALITION_WEB_PORT": "70000"}, "COALITION_WEB_PORT", "less than or equal"),
        ({"COALITION_WEB_HOST": "http://0.0.0.0"}, "COALITION_WEB_HOST", "host name"),
        (
            {"COALITION_WEB_STREAMS_PER_ADDRESS": "0"},
            "COALITION_WEB_STREAMS_PER_ADDRESS",
            "greater than",
        ),
        ({"COALITION_WEB_TRUST_FORWARDED": "maybe"}, "COALITION_WEB_TRUST_FORWARDED", "boolean"),
    ],
)
def test_a_wrong_web_setting_is_named(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], setting: str, says: str
) -> None:
    assert_named(monkeypatch, env, setting, says)


def test_good_web_settings_are_tidied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COALITION_WEB_PUBLIC_URL", "https://count.example.org/campaign")
    monkeypatch.setenv("COALITION_WEB_TELEGRAM_USERNAME", "@CoalitionBot")
    monkeypatch.setenv("COALITION_WEB_DISCORD_INVITE", "https://discord.gg/stophate")
    settings = load_settings()
    assert settings.web_public_url == "https://count.example.org/campaign/"
    assert settings.web_telegram_username == "CoalitionBot"
    assert settings.web_discord_invite == "https://discord.gg/stophate"
    assert settings.web_streams_per_address == 8 and not settings.web_trust_forwarded


async def test_the_cli_stops_on_a_wrong_web_setting_with_one_line(tmp_path: Path) -> None:
    lines = await console_refusal(tmp_path, COALITION_WEB_PUBLIC_URL="javascript:alert(1)")
    assert len(lines) == 1
    assert lines[0].startswith("configuration error: COALITION_WEB_PUBLIC_URL: use the page's")


async def test_the_console_serves_the_page_and_it_follows_a_pledge(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "console",
        env=console_environment(tmp_path, COALITION_WEB_PORT="0"),
        cwd=tmp_path,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        async with asyncio.timeout(60):
            first = (await process.stdout.readline()).decode()
        found = re.fullmatch(r"The campaign page, live: (http://127\.0\.0\.1:\d+/)\n", first)
        assert found, first
        url = found.group(1)
        async with aiohttp.ClientSession() as http:

            async def pledged() -> int:
                async with http.get(url + "api/counts") as response:
                    return int(json.loads(await response.text())["pledged"])

            assert await pledged() == 0
            process.stdin.write(b"/pledge\n")
            await process.stdin.drain()
            await eventually(lambda: pledged(), timeout=10)
            async with http.get(url, headers={"Accept-Language": "fr"}) as response:
                page = await response.text()
            assert '<strong id="pledged" class="n">1</strong>' in page
        process.stdin.close()
        async with asyncio.timeout(60):
            rest, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        assert "The campaign page" not in rest.decode()  # said once, at start
        assert "Traceback" not in err.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

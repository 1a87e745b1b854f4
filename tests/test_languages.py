"""A language is a catalog: a folder in locales/ makes the bot speak it everywhere, on every
front-end, with no code change; removing the folder removes the language."""

from __future__ import annotations

import io
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import simcord
from babel.messages.pofile import read_po, write_po

from bot.app.bootstrap import bootstrap
from bot.core.i18n import LOCALES_DIR, available_languages
from bot.core.settings import ConfigError, load_settings
from bot.frontends.console import Console
from bot.frontends.discord import DiscordFrontend
from tests.conftest import NOW, PEPPER, WAIT, App, make_settings
from tests.test_telegram_e2e import telegram_world

SPANISH = {
    "From now on I will answer you in English.": "A partir de ahora te responderé en español.",
    "I answer you in {language}. Choose another language:": (
        "Te respondo en {language}. Elige otro idioma:"
    ),
    "Pledge to freeze your Instagram and Facebook accounts": (
        "Comprométete a congelar tus cuentas de Instagram y Facebook"
    ),
}
SPANISH_COMMAND_NAMES = {"pledge": "comprometerse"}
ORGANIZER = 4242


def with_spanish(root: Path) -> Path:
    """A copy of locales/ plus the English catalog copied as es, a few messages translated."""
    locales = root / "locales"
    shutil.copytree(LOCALES_DIR, locales, ignore=shutil.ignore_patterns("*.mo", "*.pot"))
    with (locales / "en" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale="es")
    for msgid, text in SPANISH.items():
        catalog[msgid].string = text
    for msgid, text in SPANISH_COMMAND_NAMES.items():
        message = catalog.get(msgid, context="command name")
        assert message is not None, msgid
        message.string = text
    (locales / "es" / "LC_MESSAGES").mkdir(parents=True)
    with (locales / "es" / "LC_MESSAGES" / "messages.po").open("wb") as handle:
        write_po(handle, catalog)
    return locales


@asynccontextmanager
async def console_bot(data: Path, locales: Path, **overrides: object) -> AsyncIterator[App]:
    """The real bot on its console front-end, speaking the catalogs in `locales`."""
    settings = make_settings(
        data, locales_dir=locales, telegram_organizer_ids=str(ORGANIZER), **overrides
    )
    async with bootstrap(settings, clock=lambda: NOW) as (services, dispatcher):
        out = io.StringIO()
        yield App(services, dispatcher, out, Console(dispatcher, out=out))


def test_the_bot_speaks_the_catalogs_in_locales() -> None:
    assert available_languages() == ("ar", "en", "fr")


async def test_a_copied_catalog_makes_spanish_appear_in_the_console(tmp_path: Path) -> None:
    locales = with_spanish(tmp_path)
    async with console_bot(tmp_path / "data", locales) as app:
        assert app.services.catalogs.languages == ("ar", "en", "es", "fr")
        picker = await app.run("/language")
        assert "Español" in picker and "Français" in picker and "العربية" in picker
        assert "[ar|en|es|fr|auto]" in await app.run("/help")
        chosen = await app.run("/language es")
        assert "A partir de ahora te responderé en español." in chosen
        assert "Te respondo en Español. Elige otro idioma:" in await app.run("/language")
        # Typed by its name in any language the bot speaks, too.
        assert "A partir de ahora" in await app.run("/language spanish")
        assert "A partir de ahora" in await app.run("/language espagnol")
        preview = await app.run(f":as {ORGANIZER}\n:organizer on\n/announce es: Hola fr: Salut")
        assert "Español: Hola" in preview


async def test_removing_the_catalog_removes_the_language(tmp_path: Path) -> None:
    locales = with_spanish(tmp_path)
    data = tmp_path / "data"
    async with console_bot(data, locales) as app:
        assert "A partir de ahora" in await app.run(":as maria\n/language es")
    shutil.rmtree(locales / "es")
    async with console_bot(data, locales) as app:
        assert app.services.catalogs.languages == ("ar", "en", "fr")
        picker = await app.run(":as maria\n/language")
        assert "Español" not in picker
        assert "I answer you in English" in picker  # her choice is gone with the catalog
        refused = await app.run("/language es")
        assert "A partir de ahora" not in refused
        assert "[ar|en|fr|auto]" in refused


def test_a_default_language_needs_its_catalog(tmp_path: Path) -> None:
    locales = with_spanish(tmp_path)
    settings = load_settings(
        _env_file=None, data_dir=tmp_path, pepper=PEPPER, locales_dir=locales, default_language="es"
    )
    assert settings.default_language == "es"
    shutil.rmtree(locales / "es")
    with pytest.raises(ConfigError) as error:
        load_settings(
            _env_file=None,
            data_dir=tmp_path,
            pepper=PEPPER,
            locales_dir=locales,
            default_language="es",
        )
    assert str(error.value) == (
        "COALITION_DEFAULT_LANGUAGE: no catalog for it in locales/: use 'ar', 'en' or 'fr'"
    )


def test_a_catalog_folder_that_is_no_language_stops_start_up(tmp_path: Path) -> None:
    locales = with_spanish(tmp_path)
    (locales / "es").rename(locales / "spanish")
    with pytest.raises(ConfigError) as error:
        load_settings(_env_file=None, data_dir=tmp_path, pepper=PEPPER, locales_dir=locales)
    assert str(error.value) == (
        "COALITION_LOCALES_DIR: 'spanish' is not a language code Babel knows"
    )


async def test_telegram_publishes_a_spanish_menu_and_answers_in_spanish(tmp_path: Path) -> None:
    locales = with_spanish(tmp_path)
    async with telegram_world(tmp_path / "data", locales_dir=locales) as world:
        server = world.server
        menu = {c["command"]: c["description"] for c in server.commands[("default", "es")]}
        assert menu["pledge"] == SPANISH["Pledge to freeze your Instagram and Facebook accounts"]
        server.add_user(777, "María", "es")
        server.user_sends(777, 777, "/language")
        await server.wait_for(lambda: len(server.messages(777)) >= 1, WAIT)
        answer = server.messages(777)[-1]
        assert answer["text"].startswith("Te respondo en Español.")
        labels = [b["text"] for row in answer["reply_markup"]["inline_keyboard"] for b in row]
        assert "Español" in labels


async def test_discord_is_given_the_spanish_names_for_its_spanish_locales(
    tmp_path: Path,
) -> None:
    locales = with_spanish(tmp_path)
    settings = make_settings(
        tmp_path / "data",
        discord_token="M" + "a" * 23 + "." + "b" * 6 + "." + "c" * 27,
        discord_shard_count=1,
        locales_dir=locales,
    )
    async with bootstrap(settings, clock=lambda: NOW) as (services, dispatcher):
        frontend = DiscordFrontend(services, dispatcher)
        env = simcord.Env(frontend.client, shard_count=1, settle_timeout=3 * WAIT)
        await env.start()
        await frontend.lead()  # the only process: it leads
        try:
            puts = [
                r for r in env.http_requests if r.method == "PUT" and r.path.endswith("/commands")
            ]
            synced: dict[str, dict[str, Any]] = {c["name"]: c for c in puts[-1].json}
        finally:
            await env.shutdown()
            await frontend.boards.close()
        env.raise_errors()
    pledge = synced["pledge"]
    for locale in ("es-ES", "es-419"):
        assert pledge["name_localizations"][locale] == "comprometerse"
        assert (
            pledge["description_localizations"][locale]
            == SPANISH["Pledge to freeze your Instagram and Facebook accounts"]
        )
    assert pledge["name_localizations"]["fr"] == "je-m-engage"
    language = synced["language"]["options"][0]
    assert [choice["value"] for choice in language["choices"]] == ["ar", "en", "es", "fr", "auto"]

"""Every message exists in every catalog (Arabic, English, French, and any language added to
locales/), with matching placeholders and plurals."""

from __future__ import annotations

import gettext
import re
from functools import cache
from pathlib import Path

import pytest
from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.i18n import Catalogs, Translator, available_languages

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "locales"
LANGS = available_languages(LOCALES)
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2), "P_": ((1, "c"), 2)}
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# CLDR categories in the order gettext forms are numbered, written out for the languages we
# started with; a language added later is checked for consistency with CLDR instead.
FORM_ORDER = {
    "ar": ["zero", "one", "two", "few", "many", "other"],
    "fr": ["one", "other"],
    "en": ["one", "other"],
}


Key = tuple[str | None, str]  # (msgctxt, msgid)


def source_messages() -> dict[Key, str | None]:
    """(context, msgid) -> msgid_plural (or None), extracted from the code as pybabel would."""
    found: dict[Key, str | None] = {}
    for folder in ("bot", "handlers"):
        for _file, _line, message, _comments, context in extract_from_dir(
            ROOT / folder, method_map=[("**.py", "python")], keywords=KEYWORDS
        ):
            if isinstance(message, tuple):
                found[(context, message[0])] = message[1]
            else:
                found[(context, message)] = None
    return found


def key_of(entry: object) -> Key:
    msgid = entry.id  # type: ignore[attr-defined]
    return (entry.context, msgid if isinstance(msgid, str) else msgid[0])  # type: ignore[attr-defined]


def catalog(lang: str) -> Catalog:
    with (LOCALES / lang / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=lang)


def form_order(lang: str) -> list[str]:
    """The CLDR category of each gettext form: written out above, else the first category
    each form's number gets in the catalog's own Plural-Forms (checked for all n below)."""
    if lang in FORM_ORDER:
        return FORM_ORDER[lang]
    cat = catalog(lang)
    choose, rule = gettext.c2py(cat.plural_expr), Locale.parse(lang).plural_form
    order: dict[int, str] = {}
    for n in range(0, 2001):
        order.setdefault(choose(n), rule(n))
    return [order.get(index, "other") for index in range(cat.num_plurals)]


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


@pytest.mark.parametrize("lang", LANGS)
def test_every_message_is_translated_with_the_same_placeholders(lang: str) -> None:
    wanted = source_messages()
    assert len(wanted) > 50
    entries = {key_of(m): m for m in catalog(lang) if m.id}
    missing = sorted(set(wanted) - set(entries))
    assert not missing, f"{lang}: not in the catalog: {missing[:3]}"
    problems = []
    for key, plural in wanted.items():
        msgid = key[1]
        entry = entries[key]
        assert not entry.fuzzy, f"{lang}: fuzzy {msgid!r}"
        forms = list(entry.string) if isinstance(entry.string, tuple) else [entry.string]
        if lang == "en" and not any(forms):
            continue  # gettext shows the English msgid
        if not all(forms):
            problems.append(f"untranslated {msgid!r}")
            continue
        expected = placeholders(msgid) | (placeholders(plural) if plural else set())
        for form in forms:
            extra = placeholders(form) - expected
            lost = (expected - {"count"}) - placeholders(form)
            if extra or lost:
                problems.append(f"{msgid!r}: extra {extra or '-'}, lost {lost or '-'} in {form!r}")
        if plural is None and placeholders(forms[0]) != expected:
            problems.append(f"{msgid!r}: placeholders differ in {forms[0]!r}")
        if plural is not None:
            assert len(forms) == len(form_order(lang)), f"{lang}: {msgid!r} has {len(forms)} forms"
    assert not problems, f"{lang}: " + "; ".join(problems[:5])


@pytest.mark.parametrize("lang", LANGS)
def test_plural_forms_header_agrees_with_cldr(lang: str) -> None:
    cat = catalog(lang)
    expression = cat.plural_expr
    choose = gettext.c2py(expression)
    rule = Locale.parse(lang).plural_form
    order = form_order(lang)
    assert cat.num_plurals == len(order)
    for n in range(0, 2001):
        category = rule(n)
        if category not in order:  # French "many" only exists for millions
            category = "other"
        assert choose(n) == order.index(category), f"{lang}: n={n} is {category}"


def test_template_is_up_to_date() -> None:
    with (LOCALES / "messages.pot").open("rb") as handle:
        template = {key_of(m) for m in read_po(handle) if m.id}
    assert template == set(source_messages()), "run `make locales`"


def test_command_summaries_fit_telegram_menus() -> None:
    from bot.core.i18n import Catalogs, use
    from handlers import build_registry

    catalogs = Catalogs.load()
    for lang in LANGS:
        with use(catalogs.get(lang)):
            from bot.core.i18n import _

            for command in build_registry():
                assert 3 <= len(_(command.summary)) <= 256, (lang, command.name)


def test_one_registry_gives_every_language_its_menu() -> None:
    from bot.core.i18n import Catalogs, use
    from bot.core.types import Scope
    from handlers import build_registry

    registry = build_registry()
    catalogs = Catalogs.load()
    menus = {}
    for lang in LANGS:
        with use(catalogs.get(lang)):
            menus[lang] = registry.menu()
    names = [name for name, _ in menus["en"]]
    assert "pledge" in names and "board" not in names and "start" not in names
    for lang in set(LANGS) - {"en"}:
        assert [name for name, _ in menus[lang]] == names
        assert all(
            mine != english
            for (_, mine), (_, english) in zip(menus[lang], menus["en"], strict=True)
        )
    with use(catalogs.get("en")):
        assert "board" in [name for name, _ in registry.menu(Scope.COMMUNITY)]


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", "Coordinated Universal Time"),
        ("fr", "temps universel coordonné"),
        ("ar", "التوقيت العالمي المنسق"),
    ],
)
def test_utc_has_a_proper_name_in_every_language(lang: str, expected: str) -> None:
    from zoneinfo import ZoneInfo

    from bot.core.i18n import Catalogs

    name = Catalogs.load().get(lang).zone_name(ZoneInfo("UTC"))
    assert name == expected  # Babel alone says "Unknown Region (UTC) Time"


@cache
def translator(lang: str) -> Translator:
    return Catalogs.load().get(lang)


@pytest.mark.parametrize("lang", LANGS)
@given(st.integers(min_value=-(10**15), max_value=10**15))
@settings(max_examples=300, deadline=None)
def test_numbers_are_written_as_babel_writes_them(lang: str, value: int) -> None:
    assert translator(lang).number(value) == format_decimal(value, locale=lang)

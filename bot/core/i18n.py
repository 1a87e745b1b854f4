"""Translations: gettext catalogs read with Babel, the reader's locale kept in a ContextVar.

Handlers call `_()` and `ngettext()`; the dispatcher sets the locale once per invocation with
`use()`. Placeholders are `{name}`; values are formatted for the locale (numbers with Babel)
and, in right-to-left languages, wrapped in Unicode isolates so names and numbers keep
their own direction. `Raw` values (URLs, mentions) are never wrapped.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Hashable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import cache
from pathlib import Path

from babel import Locale
from babel.core import UnknownLocaleError
from babel.dates import format_skeleton, format_time, get_timezone_name
from babel.lists import format_list
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import (
    format_decimal,
    format_percent,
    get_group_symbol,
)
from babel.support import Translations

log = logging.getLogger(__name__)

FSI = "\u2068"
LRI = "\u2066"
PDI = "\u2069"
# A command with its Latin-script arguments, e.g. "/reminders on", not inside a URL or path.
_COMMAND = re.compile(
    r"(?<![\w/:.@\u2066])/[a-z][a-z0-9_]*"
    r"(?: (?:\[[A-Za-z0-9_|]+\]|<[A-Za-z0-9_|]+>|[A-Za-z0-9_+-]+))*"
)
DOMAIN = "messages"
UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Zulu"})
MOMENT_CACHE = 512  # formatted campaign moments: a handful in practice
FORMATTED_CACHE = 4096  # filled texts whose values are all text (see Translator._format)
LOCALES_DIR = Path(__file__).resolve().parents[2] / "locales"
SOURCE_LANGUAGE = "en"  # the msgids are English: the language every catalog translates from


def available_languages(directory: Path = LOCALES_DIR) -> tuple[str, ...]:
    """The languages the bot speaks: one per catalog, locales/<code>/LC_MESSAGES/messages.po."""
    return tuple(
        sorted(path.parents[1].name for path in directory.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    )


@cache
def language_name(code: str) -> str:
    """A language's name written in that language, as language pickers show it ("Français")."""
    name = Locale.parse(code).get_display_name(code) or code
    return name[:1].upper() + name[1:]


def known_language(code: str) -> bool:
    """Whether Babel's locale data knows a language code (a catalog folder's name)."""
    try:
        Locale.parse(code)
    except (UnknownLocaleError, ValueError):
        return False
    return True


def language_words(code: str, languages: Iterable[str]) -> tuple[str, ...]:
    """What a language is called in each of `languages` (and in English): typed words that
    choose it, from Babel's locale data ("arabe", "Arabic", "العربية")."""
    locale = Locale.parse(code)
    names = {locale.get_display_name(other) for other in (*languages, SOURCE_LANGUAGE)}
    return tuple(sorted(name for name in names if name))


# Integers a locale's quick writer must write exactly as Babel does before it is used.
_PROBES = (0, 7, 42, 999, 1000, 1234, 9999, 10_000, 12_345, 99_999, 100_000, 123_456)
_PROBES += (999_999, 1_000_000, 1_234_567, 12_345_678, 123_456_789, 1_234_567_890, 10**12)


def _integer_writer(locale: Locale) -> Callable[[int], str] | None:
    """A quick way to write integers in a locale, exactly as Babel's format_decimal does
    (a pledge's answer writes a few, and Babel takes tens of microseconds each), for integers
    from 0 up; None where the locale groups or writes digits otherwise (Indian grouping,
    Persian digits)."""
    group = get_group_symbol(locale=locale)

    def write(value: int) -> str:
        return f"{value:,}".replace(",", group)

    try:
        matches = all(write(n) == format_decimal(n, locale=locale) for n in _PROBES)
    except Exception:  # locale data Babel cannot format with: keep Babel
        return None
    return write if matches else None


class Raw(str):
    """A value never wrapped in isolates: URLs, mentions, commands."""

    __slots__ = ()


_TEXTS = frozenset({str, Raw})  # values whose filled text can be kept (Translator._format)


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated later, when shown."""
    return message


def P_(context: str, message: str) -> str:
    """Mark a message with a context for extraction; translated later with pgettext."""
    return message


def isolate(text: str) -> str:
    """Wrap text in first-strong isolates so it keeps its own direction inside other text."""
    return f"{FSI}{text}{PDI}"


@dataclass(slots=True)
class Translator:
    """One locale's catalog and formatters."""

    locale: str
    translations: Translations
    babel_locale: Locale = field(init=False)
    rtl: bool = field(init=False)
    _moments: dict[tuple[datetime, str], str] = field(init=False, default_factory=dict)
    _formatted: dict[tuple[object, ...], str] = field(init=False, default_factory=dict)
    _built: dict[Hashable, str] = field(init=False, default_factory=dict)
    _integers: Callable[[int], str] | None = field(init=False, default=None)
    _zone_names: dict[str, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.babel_locale = Locale.parse(self.locale)
        self.rtl = self.babel_locale.character_order == "right-to-left"
        self._integers = _integer_writer(self.babel_locale)

    def _value(self, value: object) -> str:
        if isinstance(value, Raw):
            return str(value)
        if isinstance(value, bool):
            text = str(value)
        elif isinstance(value, int):
            text = self.number(value)
        else:
            text = str(value)
        return isolate(text) if self.rtl and text else text

    def _format(self, template: str, values: Mapping[str, object]) -> str:
        # Texts (a window, the message to post, a command) recur in every answer: each is
        # filled once. Numbers vary (a volunteer's number): those are not kept.
        key: tuple[object, ...] | None = None
        types = tuple(map(type, values.values()))
        if _TEXTS.issuperset(types):
            key = (template, tuple(values.items()), types)  # Raw and str fill differently
            cached = self._formatted.get(key)
            if cached is not None:
                return cached
        text = (
            template.format_map({k: self._value(v) for k, v in values.items()})
            if values
            else template
        )
        if self.rtl and "/" in text:
            # Keep "/help" reading left to right inside right-to-left text.
            text = _COMMAND.sub(lambda m: f"{LRI}{m.group(0)}{PDI}", text)
        if key is not None:
            if len(self._formatted) >= FORMATTED_CACHE:
                self._formatted.clear()
            self._formatted[key] = text
        return text

    def gettext(self, message: str, /, **values: object) -> str:
        """Translate a message and fill its placeholders."""
        return self._format(self.translations.gettext(message), values)

    def built(self, key: Hashable, build: Callable[[], str]) -> str:
        """The text `build` makes in this language, made once per key: the key must hold
        everything the text depends on (a pledge's answer repeats the same paragraphs)."""
        text = self._built.get(key)
        if text is None:
            if len(self._built) >= FORMATTED_CACHE:
                self._built.clear()
            text = self._built[key] = build()
        return text

    def ngettext(self, singular: str, plural: str, n: int, /, **values: object) -> str:
        """Translate a message whose form depends on n (CLDR plural rules); `{count}` is n."""
        values.setdefault("count", n)
        return self._format(self.translations.ngettext(singular, plural, n), values)

    def pgettext(self, context: str, message: str) -> str:
        """Translate a short message that has a context (e.g. a command name)."""
        return str(self.translations.pgettext(context, message))

    def number(self, value: int | float) -> str:
        """A number written the locale's way."""
        if self._integers is not None and type(value) is int and value >= 0:
            return self._integers(value)
        return format_decimal(value, locale=self.babel_locale)

    def join(self, items: list[str]) -> str:
        """A list written the locale's way ('a, b and c', 'a, b et c')."""
        return format_list(items, locale=self.babel_locale)

    def percent(self, value: float) -> str:
        """A fraction written as a percentage the locale's way."""
        return format_percent(value, locale=self.babel_locale)

    def when(self, moment: datetime, zone: tzinfo) -> str:
        """A moment as a date and time in the given zone (without the zone's name)."""
        cache_key = (moment, str(zone))
        cached = self._moments.get(cache_key)
        if cached is None:
            if len(self._moments) >= MOMENT_CACHE:
                self._moments.clear()
            cached = self._moments[cache_key] = self._when(moment, zone)
        return cached

    def _when(self, moment: datetime, zone: tzinfo) -> str:
        date = format_skeleton("yMMMEd", moment, tzinfo=zone, locale=self.babel_locale)
        time = format_time(moment, "short", tzinfo=zone, locale=self.babel_locale)
        glue = str(self.babel_locale.datetime_formats["medium"])
        return glue.replace("{1}", date).replace("{0}", time)

    def zone_name(self, zone: tzinfo) -> str:
        """A time zone's name in the reader's language, e.g. 'heure d’Europe centrale'."""
        name = self._zone_names.get(str(zone))
        if name is None:  # a few hundred zones at most: Babel takes ~50 µs to name one
            name = self._zone_names[str(zone)] = self._zone_name(zone)
        return name

    def _zone_name(self, zone: tzinfo) -> str:
        if str(zone) in UTC_NAMES:
            # Babel has no metazone for UTC ("Unknown Region (UTC) Time"): CLDR's own name.
            names = self.babel_locale.time_zones.get("Etc/UTC", {}).get("long", {})
            return str(names.get("standard", "UTC"))
        return get_timezone_name(zone, locale=self.babel_locale)


class Catalogs:
    """Every language's translator, compiled in memory from the .po files at start-up."""

    def __init__(
        self, translators: Mapping[str, Translator], default: str = SOURCE_LANGUAGE
    ) -> None:
        self._translators = dict(translators)
        self._languages = tuple(self._translators)
        self.default = default if default in self._translators else SOURCE_LANGUAGE

    @classmethod
    def load(cls, directory: Path = LOCALES_DIR, default: str = SOURCE_LANGUAGE) -> Catalogs:
        """Read every catalog in locales/: each <lang>/LC_MESSAGES/messages.po is a language."""
        translators: dict[str, Translator] = {}
        for language in available_languages(directory):
            path = directory / language / "LC_MESSAGES" / f"{DOMAIN}.po"
            with path.open("rb") as handle:
                catalog = read_po(handle, locale=language, domain=DOMAIN)
            buffer = io.BytesIO()
            write_mo(buffer, catalog)
            buffer.seek(0)
            translators[language] = Translator(language, Translations(buffer, domain=DOMAIN))
        return cls(translators, default)

    @property
    def languages(self) -> tuple[str, ...]:
        """The codes of the languages with a catalog, in a stable order."""
        return self._languages

    def get(self, language: str) -> Translator:
        """The translator for a language, or the default one."""
        return self._translators.get(language) or self._translators[self.default]

    def match(self, hint: str | None) -> str | None:
        """A platform hint such as 'fr-CA' or 'ar_EG' reduced to a language we speak, or None."""
        return normalize(hint, self.languages)


def normalize(hint: str | None, languages: Iterable[str]) -> str | None:
    """Reduce a platform hint such as 'fr-CA' or 'ar_EG' to one of `languages`, or None."""
    if not hint:
        return None
    base = hint.replace("_", "-").split("-", 1)[0].lower()
    return base if base in languages else None


_current: ContextVar[Translator | None] = ContextVar("coalition_translator", default=None)


def current() -> Translator:
    """The translator of the invocation being handled."""
    translator = _current.get()
    if translator is None:
        raise LookupError("no locale is set: call i18n.use() first")
    return translator


class use:  # used as a function: `with i18n.use(translator):`
    """Make `translator` the current one for the code inside the block (a class, not a
    generator: every command enters one)."""

    __slots__ = ("_token", "_translator")

    def __init__(self, translator: Translator) -> None:
        self._translator = translator

    def __enter__(self) -> Translator:
        self._token = _current.set(self._translator)
        return self._translator

    def __exit__(self, *exc: object) -> None:
        _current.reset(self._token)


def _(message: str, /, **values: object) -> str:
    """Translate into the current locale and fill placeholders."""
    return current().gettext(message, **values)


def ngettext(singular: str, plural: str, n: int, /, **values: object) -> str:
    """Translate a plural message into the current locale; `{count}` is n."""
    return current().ngettext(singular, plural, n, **values)

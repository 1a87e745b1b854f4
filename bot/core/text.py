"""Making what someone typed safe to quote back, reading the numbers in it, and the
platforms' message limits."""

from __future__ import annotations

from bot.core.i18n import Raw, _

MAX_ECHO = 40
# How many characters one message may have on each platform (the console takes any length).
# Longer texts are sent in several messages, split by split_text.
MESSAGE_LIMITS = {"telegram": 4096, "discord": 2000}
_DIRECTION_CONTROLS = frozenset(
    "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def echo(text: str, limit: int = MAX_ECHO) -> str:
    """A piece of what someone typed, safe to quote back: printable, no direction tricks, short."""
    printable = "".join(ch for ch in text if ch.isprintable() and ch not in _DIRECTION_CONTROLS)
    return printable[:limit] + ("…" if len(printable) > limit else "")


def split_text(text: str, limit: int) -> list[str]:
    """Cut a text into pieces of at most `limit` characters, at paragraph, line, then word
    breaks (a platform's message limit)."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(" "))
        if cut <= limit // 2:
            cut = limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    pieces.append(rest)
    return [p for p in pieces if p]


def message_count(text: str, platform: str) -> int:
    """How many messages a text makes on a platform, split as its transport splits it."""
    limit = MESSAGE_LIMITS.get(platform)
    return 1 if limit is None else max(1, len(split_text(text, limit)))


def parse_whole(text: str, maximum: int) -> int | None:
    """A whole number from 0 to `maximum` written in decimal digits (Arabic-Indic ones too),
    or None: never an error, whatever was typed ('²', a hundred digits)."""
    text = text.strip()
    # isdecimal, not isdigit: '²' is a digit that int() refuses. The length check keeps
    # int() from reading thousands of digits.
    if not text.isdecimal() or len(text) > len(str(maximum)):
        return None
    value = int(text)
    return value if value <= maximum else None


def with_opt_out(text: str) -> str:
    """A broadcast's text as one volunteer gets it: with the line that says how to stop."""
    return "\n\n".join(
        (text, _("To stop these reminders, send {command}.", command=Raw("/reminders off")))
    )


_OVERRIDES = frozenset("\u202a\u202b\u202c\u202d\u202e")


def clean(text: str) -> str:
    """Text someone wants published: control characters and direction overrides removed
    (they can hide or reorder words), line breaks and everything printable kept."""
    return "".join(
        ch for ch in text if (ch.isprintable() or ch in "\n\t") and ch not in _OVERRIDES
    ).strip()

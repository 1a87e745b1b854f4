"""Making what someone typed safe to quote back."""

from __future__ import annotations

MAX_ECHO = 40
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


_OVERRIDES = frozenset("\u202a\u202b\u202c\u202d\u202e")


def clean(text: str) -> str:
    """Text someone wants published: control characters and direction overrides removed
    (they can hide or reorder words), line breaks and everything printable kept."""
    return "".join(
        ch for ch in text if (ch.isprintable() or ch in "\n\t") and ch not in _OVERRIDES
    ).strip()

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

"""The embeddable badge: the campaign's name and its count as SVG text, so whoever renders it
shapes the script (Arabic right to left) with their own fonts."""

from __future__ import annotations

import unicodedata
from html import escape

from bot.core import i18n
from bot.core.i18n import Translator, _, ngettext
from bot.web.live import Snapshot

HEIGHT = 24
FONT_SIZE = 12
PADDING = 10
FONTS = "Verdana,DejaVu Sans,Noto Sans,Noto Sans Arabic,Tahoma,sans-serif"


def _width(text: str) -> int:
    """A generous estimate of the text's width in pixels at FONT_SIZE (no font metrics here:
    the reader's renderer picks the font)."""
    width = 0.0
    for char in text:
        if unicodedata.category(char) in ("Mn", "Cf"):
            continue  # marks and isolates take no room
        if char in " .,'’:":
            width += 4.5
        elif char.isupper() or char.isdigit() or ord(char) > 0x2000:
            width += 8.5
        else:
            width += 7.5
    return int(width) + 2 * PADDING


def render_badge(snapshot: Snapshot, translator: Translator) -> str:
    """The badge in one language, with the count as of `snapshot`."""
    with i18n.use(translator):
        name = _("Stop Hate For Profit")
        count = ngettext("{count} pledged", "{count} pledged", snapshot.pledged)
        label = ngettext(
            "{count} volunteer has pledged to freeze their accounts",
            "{count} volunteers have pledged to freeze their accounts",
            snapshot.pledged,
        )
    name_width, count_width = _width(name), _width(count)
    total = name_width + count_width
    rtl = translator.rtl
    # Reading order: the name first, so on the right in a right-to-left language.
    name_x = count_width if rtl else 0
    count_x = 0 if rtl else name_width
    direction = ' direction="rtl"' if rtl else ""

    def text(x: int, width: int, content: str, ident: str) -> str:
        return (
            f'<text id="{ident}" x="{x + width / 2:g}" y="{HEIGHT / 2 + FONT_SIZE * 0.36:g}" '
            f'text-anchor="middle"{direction}>{escape(content, quote=False)}</text>'
        )

    full = f"{name}: {label}"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="{HEIGHT}" '
        f'viewBox="0 0 {total} {HEIGHT}" role="img" aria-label="{escape(full)}" '
        f'xml:lang="{escape(translator.locale)}">'
        f"<title>{escape(full, quote=False)}</title>"
        f'<rect id="name-box" x="{name_x}" width="{name_width}" height="{HEIGHT}" fill="#2b2b33"/>'
        f'<rect id="count-box" x="{count_x}" width="{count_width}" height="{HEIGHT}" '
        'fill="#9b1c1c"/>'
        f'<g fill="#fff" font-family="{FONTS}" font-size="{FONT_SIZE}">'
        f"{text(name_x, name_width, name, 'name')}{text(count_x, count_width, count, 'count')}"
        "</g></svg>\n"
    )

"""A fake Telegram Bot API server, for tests that drive the real python-telegram-bot.

It is a small aiohttp application on 127.0.0.1 that answers ``/bot<token>/<method>`` the
way api.telegram.org does: form-encoded (or JSON, or multipart) parameters whose non-string
values are JSON, answers ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code": N,
"description": "...", "parameters": {...}}`` with the matching HTTP status. Point an
``ApplicationBuilder`` at it with ``.base_url(server.base_url)`` and
``.base_file_url(server.base_file_url)``; nothing in PTB has to change.

The test plays the users (``user_sends``, ``user_presses``, ``block_bot``...) and looks at
what the bot did (``messages``, ``edits``, ``callback_answers``, ``pinned``...). Telegram's
behaviour is modelled where a bot could trip on it: HTML / MarkdownV2 parsing with the real
error texts, "message is not modified", 403 for a user who never started the bot or blocked
it, 400 with ``migrate_to_chat_id`` after a group upgrade, flood limits answered with 429.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import html
import inspect
import itertools
import json
import math
import re
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web

GROUP_ANONYMOUS_BOT_ID = 1087968824
CHANNEL_BOT_ID = 136817688
MAX_TEXT_LENGTH = 4096
MAX_CALLBACK_ANSWER_LENGTH = 200
MAX_CALLBACK_DATA_BYTES = 64
GROUP_TYPES = frozenset({"group", "supergroup"})

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"

# Parameters that are strings on the wire and must not be JSON-decoded even when they look
# like JSON (a text "123" or "true" stays a string). Every other form value is JSON, as PTB
# json.dumps every non-str value it sends.
STRING_PARAMS = frozenset(
    {
        "business_connection_id",
        "callback_query_id",
        "caption",
        "certificate",
        "custom_title",
        "data",
        "description",
        "emoji",
        "inline_message_id",
        "ip_address",
        "language_code",
        "message_effect_id",
        "name",
        "parse_mode",
        "query",
        "secret_token",
        "short_description",
        "text",
        "title",
        "url",
    }
)

# Update types a bot gets when it never said (or said an empty list).
ALL_UPDATE_TYPES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "callback_query",
        "inline_query",
        "chosen_inline_result",
        "my_chat_member",
        "chat_member",
        "chat_join_request",
        "message_reaction",
        "message_reaction_count",
        "poll",
        "poll_answer",
        "shipping_query",
        "pre_checkout_query",
    }
)
DEFAULT_UPDATE_TYPES = ALL_UPDATE_TYPES - {
    "chat_member",
    "message_reaction",
    "message_reaction_count",
}


class ApiError(Exception):
    """An error answer of the Bot API: HTTP status, description, optional parameters."""

    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def body(self) -> dict[str, Any]:
        """The JSON body Telegram sends for this error."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


@dataclass
class Limits:
    """Telegram's published flood limits; all enforced when ``enabled``.

    Counted per destination chat over sliding windows: ``per_second_overall`` messages in
    any second across all chats, ``per_second_per_chat`` in any second for one chat, and
    ``per_minute_per_group`` in any minute for one group or supergroup.
    """

    enabled: bool = False
    per_second_overall: int = 30
    per_second_per_chat: int = 1
    per_minute_per_group: int = 20


# --------------------------------------------------------------------------------------
# Text formatting: what Telegram makes of text + parse_mode (text, entities, errors).


def _u16(text: str) -> int:
    """Length in UTF-16 code units, the unit of entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


class _Builder:
    """Accumulates output text while tracking its UTF-16 length."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.length += _u16(text)

    def text(self) -> str:
        return "".join(self.parts)


def _parse_error(detail: str) -> ApiError:
    return _bad(f"can't parse entities: {detail}")


_HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)
_HTML_SIMPLE = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "code": "code",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE = re.compile(r"&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|([a-zA-Z]+));")


def _html_entity(src: str, i: int) -> tuple[str, int] | None:
    """Decode ``&lt;`` / ``&#60;`` / ``&#x3c;`` at i (Telegram knows only lt gt amp quot)."""
    match = _ENTITY_RE.match(src, i)
    if match is None:
        return None
    decimal, hexadecimal, name = match.groups()
    if name is not None:
        char = _NAMED_ENTITIES.get(name)
        return (char, match.end() - i) if char is not None else None
    code = int(decimal) if decimal is not None else int(hexadecimal, 16)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code), match.end() - i


def _html_entity_for(tag: str, attrs: dict[str, str], offset: int, length: int) -> dict | None:
    base = {"offset": offset, "length": length}
    if tag in _HTML_SIMPLE:
        return {"type": _HTML_SIMPLE[tag], **base}
    if tag == "a":
        url = attrs.get("href", "")
        if not url:
            return None
        mention = re.fullmatch(r"tg://user\?id=(\d+)", url)
        if mention:
            user = {"id": int(mention.group(1)), "is_bot": False, "first_name": "User"}
            return {"type": "text_mention", **base, "user": user}
        return {"type": "text_link", **base, "url": url}
    if tag == "pre":
        entity = {"type": "pre", **base}
        if attrs.get("language"):
            entity["language"] = attrs["language"]
        return entity
    if tag == "blockquote":
        kind = "expandable_blockquote" if "expandable" in attrs else "blockquote"
        return {"type": kind, **base}
    if tag == "tg-emoji":
        return {"type": "custom_emoji", **base, "custom_emoji_id": attrs.get("emoji-id", "")}
    return None


def parse_html(src: str) -> tuple[str, list[dict]]:
    """Telegram's HTML parse mode (modelled on tdlib's parse_html), with its error texts."""
    out = _Builder()
    stack: list[tuple[str, dict[str, str], int]] = []
    entities: list[dict] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c == "&":
            decoded = _html_entity(src, i)
            if decoded is not None:
                out.add(decoded[0])
                i += decoded[1]
                continue
        if c != "<":
            out.add(c)
            i += 1
            continue
        begin = i
        i += 1
        if i < n and src[i] != "/":
            j = i
            while j < n and not src[j].isspace() and src[j] != ">":
                j += 1
            if j >= n:
                raise _parse_error(f"Unclosed start tag at byte offset {_byte_offset(src, begin)}")
            tag = src[i:j].lower()
            if tag not in _HTML_TAGS:
                raise _parse_error(
                    f'Unsupported start tag "{tag}" at byte offset {_byte_offset(src, begin)}'
                )
            attrs, i = _html_attributes(src, j, tag, begin)
            if tag == "span" and attrs.get("class") != "tg-spoiler":
                raise _parse_error(
                    f'Tag "span" must have class "tg-spoiler" at byte offset '
                    f"{_byte_offset(src, begin)}"
                )
            stack.append((tag, attrs, out.length))
            continue
        # an end tag
        if not stack:
            raise _parse_error(f"Unexpected end tag at byte offset {_byte_offset(src, begin)}")
        j = i + 1
        while j < n and not src[j].isspace() and src[j] != ">":
            j += 1
        end_name = src[i + 1 : j].lower()
        while j < n and src[j].isspace():
            j += 1
        if j >= n or src[j] != ">":
            raise _parse_error(f"Unclosed end tag at byte offset {_byte_offset(src, begin)}")
        tag, attrs, start = stack.pop()
        if end_name and end_name != tag:
            raise _parse_error(
                f"Unmatched end tag at byte offset {_byte_offset(src, begin)}, "
                f'expected "</{tag}>", found "</{end_name}>"'
            )
        i = j + 1
        if tag == "code" and stack and stack[-1][0] == "pre":
            language = attrs.get("class", "")
            if language.startswith("language-") and stack[-1][2] == start:
                stack[-1][1]["language"] = language.removeprefix("language-")
                continue
        length = out.length - start
        if length > 0:
            entity = _html_entity_for(tag, attrs, start, length)
            if entity is not None:
                entities.append(entity)
    if stack:
        raise _parse_error(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return out.text(), entities


def _html_attributes(src: str, i: int, tag: str, begin: int) -> tuple[dict[str, str], int]:
    """Parse ``name="value"`` pairs from i to the closing '>'; returns attrs, index after '>'."""
    n = len(src)
    attrs: dict[str, str] = {}
    unclosed = _parse_error(f"Unclosed start tag at byte offset {_byte_offset(src, begin)}")
    while True:
        while i < n and src[i].isspace():
            i += 1
        if i >= n:
            raise unclosed
        if src[i] == ">":
            return attrs, i + 1
        k = i
        while k < n and not src[k].isspace() and src[k] not in "=>":
            k += 1
        name = src[i:k].lower()
        while k < n and src[k].isspace():
            k += 1
        if k >= n:
            raise unclosed
        if src[k] != "=":
            if tag == "blockquote" and name == "expandable":
                attrs[name] = ""
                i = k
                continue
            raise _parse_error(
                f'Expected equal sign in declaration of an attribute of the tag "{tag}" '
                f"at byte offset {_byte_offset(src, begin)}"
            )
        k += 1
        while k < n and src[k].isspace():
            k += 1
        if k >= n:
            raise unclosed
        if src[k] in "'\"":
            end = src.find(src[k], k + 1)
            if end < 0:
                raise unclosed
            raw, i = src[k + 1 : end], end + 1
        else:
            end = k
            while end < n and not src[end].isspace() and src[end] != ">":
                end += 1
            raw, i = src[k:end], end
        attrs[name] = html.unescape(raw)


_MDV2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MDV2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
}


def parse_markdown_v2(src: str) -> tuple[str, list[dict]]:
    """Telegram's MarkdownV2 parse mode (the common subset), with its error texts."""
    out = _Builder()
    stack: list[list[Any]] = []  # [type, start offset, byte offset of the mark, extra]
    entities: list[dict] = []
    quote_start: int | None = None
    i, n = 0, len(src)

    def close(kind: str, extra: dict | None = None) -> None:
        _, start, _, more = stack.pop()
        if out.length > start:
            entities.append(
                {
                    "type": kind,
                    "offset": start,
                    "length": out.length - start,
                    **more,
                    **(extra or {}),
                }
            )

    while i < n:
        c = src[i]
        top = stack[-1][0] if stack else None
        if c == "\\" and i + 1 < n and 0 < ord(src[i + 1]) <= 126:
            out.add(src[i + 1])
            i += 2
            continue
        if top in ("code", "pre"):
            if c == "`" and top == "code":
                close("code")
                i += 1
                continue
            if c == "`" and top == "pre" and src.startswith("```", i):
                close("pre")
                i += 3
                continue
            out.add(c)
            i += 1
            continue
        if c == "\n" and quote_start is not None and not src.startswith(">", i + 1):
            entities.append(
                {"type": "blockquote", "offset": quote_start, "length": out.length - quote_start}
            )
            quote_start = None
        if c not in _MDV2_RESERVED:
            out.add(c)
            i += 1
            continue
        mark = _byte_offset(src, i)
        if c == ">" and (i == 0 or src[i - 1] == "\n"):
            if quote_start is None:
                quote_start = out.length
            i += 1
            continue
        if c == "*" or c == "~":
            kind = "bold" if c == "*" else "strikethrough"
            if top == kind:
                close(kind)
            else:
                stack.append([kind, out.length, mark, {}])
            i += 1
            continue
        if c == "_":
            double = src.startswith("__", i)
            if top == "underline" and double:
                close("underline")
                i += 2
            elif top == "italic":
                close("italic")
                i += 1
            elif double:
                stack.append(["underline", out.length, mark, {}])
                i += 2
            else:
                stack.append(["italic", out.length, mark, {}])
                i += 1
            continue
        if c == "|" and src.startswith("||", i):
            if top == "spoiler":
                close("spoiler")
            else:
                stack.append(["spoiler", out.length, mark, {}])
            i += 2
            continue
        if c == "`":
            if src.startswith("```", i):
                i += 3
                newline = src.find("\n", i)
                more: dict[str, str] = {}
                if newline >= 0 and re.fullmatch(r"[^\s`]*", src[i:newline]):
                    if src[i:newline]:
                        more["language"] = src[i:newline]
                    i = newline + 1
                stack.append(["pre", out.length, mark, more])
            else:
                stack.append(["code", out.length, mark, {}])
                i += 1
            continue
        if c == "[":
            stack.append(["text_link", out.length, mark, {}])
            i += 1
            continue
        if c == "]" and top == "text_link":
            i += 1
            if i < n and src[i] == "(":
                j, url = i + 1, []
                while j < n and src[j] != ")":
                    if src[j] == "\\" and j + 1 < n:
                        j += 1
                    url.append(src[j])
                    j += 1
                if j >= n:
                    raise _parse_error(f"Can't find end of a URL at byte offset {mark}")
                i = j + 1
                _, start, _, _ = stack.pop()
                if out.length > start and url:
                    entities.append(
                        {
                            "type": "text_link",
                            "offset": start,
                            "length": out.length - start,
                            "url": "".join(url),
                        }
                    )
            else:
                stack.pop()
            continue
        raise _parse_error(
            f"Character '{c}' is reserved and must be escaped with the preceding '\\'"
        )
    if stack:
        kind, _, mark, _ = stack[-1]
        raise _parse_error(f"Can't find end of {_MDV2_NAMES[kind]} entity at byte offset {mark}")
    if quote_start is not None and out.length > quote_start:
        entities.append(
            {"type": "blockquote", "offset": quote_start, "length": out.length - quote_start}
        )
    return out.text(), entities


def parse_markdown(src: str) -> tuple[str, list[dict]]:
    """Telegram's legacy Markdown parse mode: *bold* _italic_ `code` ```pre``` [text](url)."""
    out = _Builder()
    entities: list[dict] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c == "\\" and i + 1 < n and src[i + 1] in "_*`[":
            out.add(src[i + 1])
            i += 2
            continue
        if c not in "_*`[":
            out.add(c)
            i += 1
            continue
        begin = _byte_offset(src, i)
        unclosed = _parse_error(f"Can't find end of the entity starting at byte offset {begin}")
        start = out.length
        if c == "[":
            close = src.find("]", i + 1)
            if close < 0 or not src.startswith("(", close + 1):
                raise unclosed
            end = src.find(")", close + 2)
            if end < 0:
                raise unclosed
            out.add(src[i + 1 : close])
            if out.length > start:
                entities.append(
                    {
                        "type": "text_link",
                        "offset": start,
                        "length": out.length - start,
                        "url": src[close + 2 : end],
                    }
                )
            i = end + 1
            continue
        if c == "`" and src.startswith("```", i):
            end = src.find("```", i + 3)
            if end < 0:
                raise unclosed
            body = src[i + 3 : end]
            first, sep, rest = body.partition("\n")
            more = {}
            if sep and not any(ch.isspace() for ch in first):
                body = rest
                if first:
                    more["language"] = first
            out.add(body)
            kind = "pre"
            i = end + 3
        else:
            end = src.find(c, i + 1)
            if end < 0:
                raise unclosed
            out.add(src[i + 1 : end])
            kind = {"*": "bold", "_": "italic", "`": "code"}[c]
            more = {}
            i = end + 1
        if out.length > start:
            entities.append({"type": kind, "offset": start, "length": out.length - start, **more})
    return out.text(), entities


def _strip(text: str, entities: list[dict]) -> tuple[str, list[dict]]:
    """Telegram trims leading and trailing whitespace and clips entities to what is left."""
    left = text.lstrip()
    lead = _u16(text[: len(text) - len(left)])
    stripped = left.rstrip()
    total = _u16(stripped)
    kept = []
    for entity in entities:
        start = max(0, entity["offset"] - lead)
        end = min(total, entity["offset"] + entity["length"] - lead)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    kept.sort(key=lambda e: (e["offset"], -e["length"]))
    return stripped, kept


def format_text(text: str, parse_mode: str | None) -> tuple[str, list[dict]]:
    """What Telegram stores for a text sent with a parse mode: plain text and entities."""
    mode = (parse_mode or "").lower()
    if mode == "":
        return _strip(text, [])
    if mode == "html":
        return _strip(*parse_html(text))
    if mode == "markdownv2":
        return _strip(*parse_markdown_v2(text))
    if mode == "markdown":
        return _strip(*parse_markdown(text))
    raise _bad("unsupported parse_mode")


_COMMAND_RE = re.compile(r"/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,64})?")


def command_entities(text: str) -> list[dict]:
    """The bot_command entity Telegram adds to a user's text that starts with a command."""
    match = _COMMAND_RE.match(text)
    if match is None:
        return []
    return [{"type": "bot_command", "offset": 0, "length": _u16(match.group(0))}]


# --------------------------------------------------------------------------------------
# The world: users, chats, the messages in them.


@dataclass
class _User:
    id: int
    first_name: str
    language_code: str | None
    started: bool = False
    blocked: bool = False

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.language_code:
            data["language_code"] = self.language_code
        return data


@dataclass
class _Chat:
    id: int
    type: str
    title: str
    admins: set[int] = field(default_factory=set)
    creator: int | None = None
    bot_can_pin: bool = True
    removed: bool = False
    migrated_to: int | None = None
    messages: dict[int, dict] = field(default_factory=dict)
    by_bot: list[int] = field(default_factory=list)
    deleted: set[int] = field(default_factory=set)
    last_id: int = 0

    @property
    def is_group(self) -> bool:
        return self.type in GROUP_TYPES

    def as_dict(self) -> dict[str, Any]:
        if self.type == "private":
            return {"id": self.id, "type": "private", "first_name": self.title}
        return {"id": self.id, "type": self.type, "title": self.title}

    def next_id(self) -> int:
        self.last_id += 1
        return self.last_id

    def live(self, message_id: int) -> dict | None:
        if message_id in self.deleted:
            return None
        return self.messages.get(message_id)


@dataclass
class _Webhook:
    url: str
    secret_token: str | None
    max_connections: int
    allowed_updates: list[str] | None
    ip_address: str | None


@dataclass
class _Failure:
    status: int
    delay: float


def _int(params: dict[str, Any], name: str, *, required: bool = True) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise _bad(f"{name} is empty")
        return None
    if isinstance(value, bool):
        raise _bad(f"{name} is invalid")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _bad(f"{name} is invalid") from None


def _decode(name: str, value: str) -> Any:
    """One form/query value: strings stay strings, everything else was JSON-encoded."""
    if name in STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _member(status: str, user: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"status": status, "user": user, **extra}


_ADMIN_RIGHTS = {
    "can_be_edited": False,
    "is_anonymous": False,
    "can_manage_chat": True,
    "can_delete_messages": True,
    "can_manage_video_chats": True,
    "can_restrict_members": True,
    "can_promote_members": False,
    "can_change_info": True,
    "can_invite_users": True,
    "can_post_stories": False,
    "can_edit_stories": False,
    "can_delete_stories": False,
    "can_pin_messages": True,
    "can_manage_topics": False,
}


class FakeTelegram:
    """An in-process Telegram Bot API server for one bot, driven and observed by a test.

    Use as ``async with FakeTelegram(TOKEN) as server:``; give PTB ``server.base_url`` and
    ``server.base_file_url``. Build the world with :meth:`add_user` / :meth:`add_group`,
    play users with :meth:`user_sends` / :meth:`user_presses`, and read what the bot did
    from :attr:`requests`, :meth:`messages`, :meth:`edits`, :attr:`callback_answers`,
    :attr:`pinned`, :attr:`reactions` and :attr:`commands`.
    """

    def __init__(
        self, token: str, *, username: str = "coalition_test_bot", limits: Limits | None = None
    ) -> None:
        self.token = token
        self.username = username
        self.limits = limits or Limits()
        prefix = token.split(":", 1)[0]
        self.bot_id: int = int(prefix) if prefix.isdigit() else 1234567
        self.first_name = username.removesuffix("_bot").replace("_", " ").title() or "Bot"

        # observing
        self.requests: list[tuple[str, dict]] = []
        self.rejected_429: int = 0
        self.rejected_at: list[float] = []  # monotonic times of the flood-limit 429s
        self.callback_answers: dict[str, dict] = {}
        self.pinned: dict[int, int] = {}
        self.reactions: list[dict] = []
        self.commands: dict[tuple[str, str], list[dict]] = {}
        self.webhook_deliveries: list[dict] = []
        self.webhook_replies: list[tuple[str, dict]] = []
        self.callback_answered_at: dict[str, float] = {}
        # (chat id, message id) -> [(monotonic time, text)] of every successful edit
        self.edited_at: dict[tuple[int, int], list[tuple[float, str]]] = defaultdict(list)

        # world
        self._users: dict[int, _User] = {}
        self._chats: dict[int, _Chat] = {}
        self._edits: dict[int, list[dict]] = defaultdict(list)
        self._open_queries: set[str] = set()
        self._query_ids = itertools.count(4_000_000_000_000_000_001)
        self._update_ids = itertools.count(100_000_001)

        # delivery
        self._pending: list[dict] = []
        self._allowed_updates: list[str] | None = None
        self._webhook: _Webhook | None = None
        self._webhook_error: tuple[int, str] | None = None
        self._changed = asyncio.Event()
        self._poll_generation = 0
        self._closing = False

        # limits and failures
        self._sent_all: deque[float] = deque()
        self._sent_chat: dict[int, deque[float]] = defaultdict(deque)
        self._failures: dict[str, deque[_Failure]] = defaultdict(deque)

        # server
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self._delivery: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._port: int | None = None

        self._methods: dict[str, tuple[str, Callable[[dict[str, Any]], Any]]] = {}
        for name in (
            "getMe",
            "logOut",
            "close",
            "getUpdates",
            "setWebhook",
            "deleteWebhook",
            "getWebhookInfo",
            "sendMessage",
            "editMessageText",
            "editMessageReplyMarkup",
            "deleteMessage",
            "sendChatAction",
            "answerCallbackQuery",
            "setMyCommands",
            "deleteMyCommands",
            "getMyCommands",
            "pinChatMessage",
            "unpinChatMessage",
            "unpinAllChatMessages",
            "setMessageReaction",
            "getChat",
            "getChatMember",
            "getChatAdministrators",
        ):
            handler = getattr(self, "_api_" + re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower())
            self._methods[name.lower()] = (name, handler)

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Serve on 127.0.0.1 on a free port."""
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/file/bot{token}/{path:.*}", self._handle_file)
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        self._closing = False
        self._session = ClientSession(timeout=ClientTimeout(total=5))
        self._delivery = asyncio.create_task(self._deliver_webhooks())

    async def stop(self) -> None:
        """Release held long polls, stop webhook delivery and close the server."""
        self._closing = True
        self._notify()
        tasks = [t for t in (self._delivery, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._delivery = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """What ``ApplicationBuilder.base_url`` takes: PTB appends the token and the method."""
        return f"http://127.0.0.1:{self._started_port()}/bot"

    @property
    def base_file_url(self) -> str:
        """What ``ApplicationBuilder.base_file_url`` takes (files are not served: 404)."""
        return f"http://127.0.0.1:{self._started_port()}/file/bot"

    def _started_port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeTelegram is not started: use `async with` or await start()")
        return self._port

    # -- world -----------------------------------------------------------------------------

    def add_user(
        self,
        user_id: int,
        first_name: str = "Vol",
        language_code: str | None = None,
        *,
        started: bool = False,
    ) -> None:
        """A Telegram user; the bot may write to them once they wrote to it (or ``started``)."""
        user = self._users.get(user_id)
        if user is None:
            user = self._users[user_id] = _User(user_id, first_name, language_code)
        else:
            user.first_name, user.language_code = first_name, language_code
        user.started = user.started or started
        chat = self._chats.get(user_id)
        if chat is None:
            self._chats[user_id] = _Chat(user_id, "private", first_name)
        else:
            chat.title = first_name

    def add_group(
        self,
        chat_id: int,
        title: str = "Group",
        admins: Iterable[int] = (),
        creator: int | None = None,
        bot_can_pin: bool = True,
        supergroup: bool = True,
    ) -> None:
        """A group the bot is in; it is an administrator (allowed to pin) iff ``bot_can_pin``."""
        admin_ids = set(admins)
        for user_id in (*admin_ids, *([creator] if creator is not None else [])):
            self._ensure_user(user_id)
        self._chats[chat_id] = _Chat(
            chat_id,
            "supergroup" if supergroup else "group",
            title,
            admins=admin_ids,
            creator=creator,
            bot_can_pin=bot_can_pin,
        )

    def _ensure_user(self, user_id: int) -> _User:
        if user_id not in self._users:
            self.add_user(user_id)
        return self._users[user_id]

    def _bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }

    # -- driving ---------------------------------------------------------------------------

    def user_sends(
        self, user_id: int, chat_id: int, text: str, *, sender_chat_id: int | None = None
    ) -> int:
        """A user writes ``text`` in a chat (``chat_id == user_id``: their private chat).

        With ``sender_chat_id`` an anonymous administrator writes as the group (``from`` is
        GroupAnonymousBot, ``sender_chat`` the group); another id posts as that channel.
        Returns the message id. Writing privately to the bot starts (or unblocks) it.
        """
        user = self._ensure_user(user_id)
        if chat_id == user_id:
            chat = self._chats[user_id]
            if user.blocked:
                user.blocked = False
                self._queue("my_chat_member", self._member_change(chat, user, "kicked", "member"))
            user.started = True
        else:
            found = self._chats.get(chat_id)
            if found is None:
                self.add_group(chat_id)
                found = self._chats[chat_id]
            chat = found
            if chat.migrated_to is not None:
                raise ValueError(f"chat {chat_id} was migrated to {chat.migrated_to}")
        message: dict[str, Any] = {
            "message_id": chat.next_id(),
            "date": int(time.time()),
            "chat": chat.as_dict(),
            "from": user.as_dict(),
            "text": text,
        }
        if sender_chat_id is not None:
            if sender_chat_id == chat_id:
                if user_id not in chat.admins and user_id != chat.creator:
                    raise ValueError(f"user {user_id} is not an administrator of {chat_id}")
                message["from"] = {
                    "id": GROUP_ANONYMOUS_BOT_ID,
                    "is_bot": True,
                    "first_name": "Group",
                    "username": "GroupAnonymousBot",
                }
                message["sender_chat"] = chat.as_dict()
            else:
                message["from"] = {
                    "id": CHANNEL_BOT_ID,
                    "is_bot": True,
                    "first_name": "Channel",
                    "username": "Channel_Bot",
                }
                message["sender_chat"] = {
                    "id": sender_chat_id,
                    "type": "channel",
                    "title": "Channel",
                }
        entities = command_entities(text)
        if entities:
            message["entities"] = entities
        chat.messages[message["message_id"]] = message
        if not chat.removed:
            self._queue("message", message)
        return message["message_id"]

    def user_presses(
        self, user_id: int, chat_id: int, message_id: int, data: str, *, forge: bool = False
    ) -> str:
        """A user presses the inline button with callback ``data``; returns the query id.
        With ``forge`` the data need not be a button's: what a modified client can send."""
        user = self._ensure_user(user_id)
        chat = self._chats.get(chat_id)
        message = chat.live(message_id) if chat is not None else None
        if chat is None or message is None or message_id not in chat.by_bot:
            raise ValueError(f"no message {message_id} from the bot in chat {chat_id}")
        buttons = message.get("reply_markup", {}).get("inline_keyboard", [])
        offered = [b.get("callback_data") for row in buttons for b in row]
        if data not in offered and not forge:
            raise ValueError(f"message {message_id} has no button {data!r} (it has {offered})")
        query_id = str(next(self._query_ids))
        self._open_queries.add(query_id)
        query = {
            "id": query_id,
            "from": user.as_dict(),
            "message": message,
            "chat_instance": str(abs(chat_id) * 1_000_003 % 10**19),
            "data": data,
        }
        if not chat.removed:
            self._queue("callback_query", query)
        return query_id

    def block_bot(self, user_id: int) -> None:
        """The user blocks the bot: sends to their private chat get 403 until they write."""
        user = self._ensure_user(user_id)
        if not user.blocked:
            user.blocked = True
            self._queue(
                "my_chat_member",
                self._member_change(self._chats[user_id], user, "member", "kicked"),
            )

    def remove_bot(self, chat_id: int) -> None:
        """The bot is removed from the group: sends there get 403 "bot was kicked"."""
        chat = self._chats[chat_id]
        if chat.removed:
            return
        old = "administrator" if chat.bot_can_pin else "member"
        new = "kicked" if chat.type == "supergroup" else "left"
        actor = chat.creator if chat.creator is not None else next(iter(sorted(chat.admins)), None)
        by = self._ensure_user(actor) if actor is not None else None
        self._queue("my_chat_member", self._member_change(chat, by, old, new))
        chat.removed = True

    def migrate_group(self, old_id: int, new_id: int) -> None:
        """The group becomes a supergroup with a new id; the old id answers 400 + migrate_to."""
        old = self._chats[old_id]
        new = _Chat(
            new_id,
            "supergroup",
            old.title,
            admins=set(old.admins),
            creator=old.creator,
            bot_can_pin=old.bot_can_pin,
        )
        self._chats[new_id] = new
        actor = old.creator if old.creator is not None else next(iter(sorted(old.admins)), None)
        sender = (
            self._ensure_user(actor).as_dict()
            if actor is not None
            else {"id": GROUP_ANONYMOUS_BOT_ID, "is_bot": True, "first_name": "Group"}
        )
        if not old.removed:
            for chat, key, value in (
                (old, "migrate_to_chat_id", new_id),
                (new, "migrate_from_chat_id", old_id),
            ):
                service = {
                    "message_id": chat.next_id(),
                    "date": int(time.time()),
                    "chat": chat.as_dict(),
                    "from": sender,
                    key: value,
                }
                chat.messages[service["message_id"]] = service
                self._queue("message", service)
        old.migrated_to = new_id

    def fail_next(
        self, method: str, *, status: int = 500, times: int = 1, delay: float = 0.0
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail with ``status``.

        With ``delay > 0`` the call is instead held that long and then carried out normally
        (``status`` is not used): Telegram was slow, the client may have timed out, but the
        message was sent all the same.
        """
        for _ in range(times):
            self._failures[method.lower()].append(_Failure(status, delay))

    def _member_change(self, chat: _Chat, by: _User | None, old: str, new: str) -> dict[str, Any]:
        bot = self._bot_user()

        def member(status: str) -> dict[str, Any]:
            if status == "administrator":
                return _member(
                    status, bot, **{**_ADMIN_RIGHTS, "can_pin_messages": chat.bot_can_pin}
                )
            if status == "kicked":
                return _member(status, bot, until_date=0)
            return _member(status, bot)

        actor = (
            by.as_dict()
            if by is not None
            else {
                "id": GROUP_ANONYMOUS_BOT_ID,
                "is_bot": True,
                "first_name": "Group",
            }
        )
        return {
            "chat": chat.as_dict(),
            "from": actor,
            "date": int(time.time()),
            "old_chat_member": member(old),
            "new_chat_member": member(new),
        }

    # -- observing -------------------------------------------------------------------------

    def messages(self, chat_id: int) -> list[dict]:
        """The messages the bot sent in that chat and did not delete, as they are now."""
        chat = self._chats.get(chat_id)
        if chat is None:
            return []
        return [copy.deepcopy(chat.messages[i]) for i in chat.by_bot if i not in chat.deleted]

    def edits(self, chat_id: int) -> list[dict]:
        """Every successful editMessageText there: the message as each edit left it."""
        return copy.deepcopy(self._edits.get(chat_id, []))

    def webhook_info(self) -> dict[str, Any]:
        """What getWebhookInfo would answer now."""
        return self._api_get_webhook_info({})

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Poll ``predicate`` every 10 ms; AssertionError naming it if still false at timeout."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                try:
                    what = inspect.getsource(predicate).strip()
                except (OSError, TypeError):
                    what = repr(predicate)
                recent = [method for method, _ in self.requests[-10:]]
                raise AssertionError(
                    f"condition not met within {timeout} s: {what}\n"
                    f"last API calls: {recent}; pending updates: {len(self._pending)}"
                )
            await asyncio.sleep(0.01)

    # -- updates ----------------------------------------------------------------------------

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _allowed(self) -> frozenset[str]:
        chosen = self._webhook.allowed_updates if self._webhook else self._allowed_updates
        return frozenset(chosen) if chosen else DEFAULT_UPDATE_TYPES

    def _queue(self, kind: str, payload: dict[str, Any]) -> None:
        if kind not in self._allowed():
            return
        update = {"update_id": next(self._update_ids), kind: copy.deepcopy(payload)}
        self._pending.append(update)
        self._notify()

    async def _deliver_webhooks(self) -> None:
        """Post queued updates to the webhook over up to max_connections connections at once,
        as Telegram does (so their order across connections is not guaranteed)."""
        workers: list[asyncio.Task[None]] = []
        try:
            while not self._closing:
                hook = self._webhook
                wanted = hook.max_connections if hook is not None else 0
                while len(workers) < wanted:
                    workers.append(asyncio.create_task(self._webhook_worker()))
                changed = self._changed
                await changed.wait()
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _webhook_worker(self) -> None:
        backoff = 0.05
        while not self._closing:
            changed = self._changed
            hook = self._webhook
            if hook is None or not self._pending or self._session is None:
                await changed.wait()
                continue
            update = self._pending.pop(0)
            headers = {"Content-Type": "application/json"}
            if hook.secret_token:
                headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
            error: str | None = None
            try:
                async with self._session.post(
                    hook.url, data=json.dumps(update), headers=headers
                ) as response:
                    if not 200 <= response.status < 300:
                        error = (
                            f"Wrong response from the webhook: {response.status} {response.reason}"
                        )
                    else:
                        await self._run_webhook_reply(await response.read())
            except (ClientError, OSError, TimeoutError) as exc:
                error = f"Connection failed: {type(exc).__name__}: {exc}"
            if error is None:
                self.webhook_deliveries.append(update)
                backoff = 0.05
                continue
            self._pending.insert(0, update)  # delivered again, as Telegram retries
            self._webhook_error = (int(time.time()), error)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    async def _run_webhook_reply(self, body: bytes) -> None:
        """Telegram runs a method returned in the body of a webhook answer (its result is lost)."""
        try:
            reply = json.loads(body) if body.strip() else None
        except ValueError:
            return
        if not isinstance(reply, dict) or "method" not in reply:
            return
        params = {k: v for k, v in reply.items() if k != "method"}
        known = self._methods.get(str(reply["method"]).lower())
        self.webhook_replies.append((known[0] if known else str(reply["method"]), params))
        if known is not None:
            await self._call(known[0], known[1], params)

    # -- HTTP ------------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict[str, Any]:
        raw: dict[str, str] = dict(request.query)
        typed: dict[str, Any] = {}
        if request.body_exists:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise _bad("can't parse JSON encoded request") from None
                if isinstance(body, dict):
                    typed.update(body)
            elif request.content_type in (
                "application/x-www-form-urlencoded",
                "multipart/form-data",
            ):
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, str):
                        raw[key] = value
                    else:
                        typed[key] = {
                            "filename": value.filename,
                            "content_type": value.content_type,
                            "size": len(value.file.read()),
                        }
        params = {key: _decode(key, value) for key, value in raw.items()}
        params.update(typed)
        return params

    async def _handle_file(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
        )

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        known = self._methods.get(method.lower())
        try:
            params = await self._params(request)
        except ApiError as error:
            self.requests.append((known[0] if known else method, {}))
            return web.json_response(error.body(), status=error.code)
        self.requests.append((known[0] if known else method, params))
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").body(), status=401)
        if known is None:
            return web.json_response(ApiError(404, "Not Found").body(), status=404)
        name, handler = known
        failures = self._failures.get(name.lower())
        if failures:
            failure = failures.popleft()
            if failure.delay > 0:
                task = asyncio.create_task(self._slow(failure.delay, name, handler, params))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
                return await asyncio.shield(task)
            return self._failure_response(failure.status)
        return await self._call(name, handler, params)

    async def _slow(
        self, delay: float, name: str, handler: Callable[[dict[str, Any]], Any], params: dict
    ) -> web.Response:
        await asyncio.sleep(delay)
        return await self._call(name, handler, params)

    def _failure_response(self, status: int) -> web.Response:
        if status == 429:
            self.rejected_429 += 1
            error = ApiError(429, "Too Many Requests: retry after 1", {"retry_after": 1})
        else:
            try:
                phrase = HTTPStatus(status).phrase
            except ValueError:
                phrase = "Error"
            error = ApiError(status, phrase)
        return web.json_response(error.body(), status=status)

    async def _call(
        self, name: str, handler: Callable[[dict[str, Any]], Any], params: dict[str, Any]
    ) -> web.Response:
        try:
            result = handler(params)
            if inspect.isawaitable(result):
                result = await result
        except ApiError as error:
            return web.json_response(error.body(), status=error.code)
        body: dict[str, Any] = {"ok": True, "result": result}
        if name == "setWebhook":
            body["description"] = "Webhook was set"
        elif name == "deleteWebhook":
            body["description"] = "Webhook was deleted"
        return web.json_response(body)

    # -- chats, limits, content -----------------------------------------------------------

    def _chat(self, params: dict[str, Any], *, write: bool = True) -> _Chat:
        """The chat named by chat_id, raising what Telegram answers for unusable chats."""
        value = params.get("chat_id")
        if value is None or value == "":
            raise _bad("chat_id is empty")
        try:
            chat_id = int(value)
        except (TypeError, ValueError):
            raise _bad("chat not found") from None
        chat = self._chats.get(chat_id)
        if chat is None:
            raise _bad("chat not found")
        if chat.migrated_to is not None:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": chat.migrated_to},
            )
        if chat.removed:
            raise ApiError(403, f"Forbidden: bot was kicked from the {chat.type} chat")
        if write and chat.type == "private":
            user = self._users[chat.id]
            if user.blocked:
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            if not user.started:
                raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        return chat

    def _check_limits(self, chat: _Chat) -> None:
        """Raise 429 if one more message to ``chat`` would break a limit; else count it."""
        if not self.limits.enabled:
            return
        now = time.monotonic()
        waits: list[float] = []
        overall = self._sent_all
        while overall and overall[0] <= now - 1.0:
            overall.popleft()
        per_chat = self._sent_chat[chat.id]
        while per_chat and per_chat[0] <= now - 60.0:
            per_chat.popleft()
        last_second = [t for t in per_chat if t > now - 1.0]
        for stamps, span, limit in (
            (list(overall), 1.0, self.limits.per_second_overall),
            (last_second, 1.0, self.limits.per_second_per_chat),
            (list(per_chat) if chat.is_group else [], 60.0, self.limits.per_minute_per_group),
        ):
            if len(stamps) >= limit:
                waits.append(stamps[len(stamps) - limit] + span - now)
        if waits:
            self.rejected_429 += 1
            self.rejected_at.append(now)
            seconds = max(1, math.ceil(max(waits)))
            raise ApiError(
                429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds}
            )
        overall.append(now)
        per_chat.append(now)

    def _text(self, params: dict[str, Any]) -> tuple[str, list[dict]]:
        raw = params.get("text")
        if raw is None or raw == "":
            raise _bad("message text is empty")
        if not isinstance(raw, str):
            raw = json.dumps(raw)
        entities = params.get("entities")
        if entities:
            if not isinstance(entities, list):
                raise _bad("can't parse entities JSON object")
            text, parsed = _strip(raw, [dict(e) for e in entities])
        else:
            text, parsed = format_text(raw, params.get("parse_mode"))
        if not text:
            raise _bad("message text is empty")
        if len(text) > MAX_TEXT_LENGTH:
            raise _bad("message is too long")
        return text, parsed

    def _markup(self, params: dict[str, Any]) -> dict | None:
        """The inline keyboard the message will carry (None: none); validates it."""
        markup = params.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in markup:
            return None  # reply keyboards / force_reply / remove: not part of the message
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise _bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
        actions = (
            "url",
            "callback_data",
            "web_app",
            "login_url",
            "switch_inline_query",
            "switch_inline_query_current_chat",
            "switch_inline_query_chosen_chat",
            "copy_text",
            "callback_game",
            "pay",
        )
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not button.get("text"):
                    raise _bad("can't parse inline keyboard button: Text must be non-empty")
                if not any(key in button for key in actions):
                    raise _bad(
                        "can't parse inline keyboard button: "
                        "Text buttons are unallowed in the inline keyboard"
                    )
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA_BYTES:
                    raise _bad("BUTTON_DATA_INVALID")
        if not any(rows):
            return None
        return {"inline_keyboard": rows}

    def _reply_to(self, chat: _Chat, params: dict[str, Any]) -> dict | None:
        parameters = params.get("reply_parameters")
        if parameters is None and params.get("reply_to_message_id") is not None:
            parameters = {
                "message_id": params["reply_to_message_id"],
                "allow_sending_without_reply": params.get("allow_sending_without_reply", False),
            }
        if parameters is None:
            return None
        if not isinstance(parameters, dict):
            raise _bad("can't parse reply parameters JSON object")
        target = chat
        if parameters.get("chat_id") not in (None, chat.id):
            target = self._chat({"chat_id": parameters["chat_id"]}, write=False)
        message_id = _int(parameters, "message_id")
        assert message_id is not None
        replied = target.live(message_id)
        if replied is None:
            if parameters.get("allow_sending_without_reply"):
                return None
            raise _bad("message to be replied not found")
        replied = copy.deepcopy(replied)
        replied.pop("reply_to_message", None)
        return replied

    def _message_in(self, chat: _Chat, params: dict[str, Any], missing: str) -> dict:
        message_id = _int(params, "message_id")
        assert message_id is not None
        message = chat.live(message_id)
        if message is None:
            raise _bad(missing)
        return message

    # -- the API methods ----------------------------------------------------------------------

    def _api_get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _api_log_out(self, params: dict[str, Any]) -> bool:
        return True

    def _api_close(self, params: dict[str, Any]) -> bool:
        return True

    async def _api_get_updates(self, params: dict[str, Any]) -> list[dict]:
        if self._webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = _int(params, "offset", required=False) or 0
        limit = _int(params, "limit", required=False) or 100
        limit = min(max(limit, 1), 100)
        try:
            timeout = max(0.0, float(params.get("timeout") or 0))
        except (TypeError, ValueError):
            raise _bad("timeout is invalid") from None
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = [str(kind) for kind in allowed]
        if offset > 0:
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
        elif offset < 0:
            self._pending = self._pending[offset:]
        self._poll_generation += 1
        generation = self._poll_generation
        self._notify()  # an older long poll learns it was superseded
        deadline = time.monotonic() + timeout
        while True:
            changed = self._changed
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            if self._pending or self._closing or self._webhook is not None:
                return copy.deepcopy(self._pending[:limit]) if self._webhook is None else []
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    def _api_set_webhook(self, params: dict[str, Any]) -> bool:
        url = params.get("url") or ""
        if not url:
            return self._api_delete_webhook(params)
        if not re.match(r"https?://", url):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise _bad("secret token contains unallowed characters")
        allowed = params.get("allowed_updates")
        if params.get("drop_pending_updates"):
            self._pending.clear()
        self._webhook = _Webhook(
            url=url,
            secret_token=secret,
            max_connections=_int(params, "max_connections", required=False) or 40,
            allowed_updates=[str(k) for k in allowed] if isinstance(allowed, list) else None,
            ip_address=params.get("ip_address"),
        )
        self._webhook_error = None
        self._notify()
        return True

    def _api_delete_webhook(self, params: dict[str, Any]) -> bool:
        if params.get("drop_pending_updates"):
            self._pending.clear()
        self._webhook = None
        self._notify()
        return True

    def _api_get_webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self._webhook.url if self._webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if self._webhook is not None:
            info["max_connections"] = self._webhook.max_connections
            if self._webhook.allowed_updates is not None:
                info["allowed_updates"] = self._webhook.allowed_updates
            if self._webhook.ip_address:
                info["ip_address"] = self._webhook.ip_address
            if self._webhook_error is not None:
                info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    def _api_send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        text, entities = self._text(params)
        markup = self._markup(params)
        replied = self._reply_to(chat, params)
        self._check_limits(chat)
        message: dict[str, Any] = {
            "message_id": chat.next_id(),
            "from": self._bot_user(),
            "chat": chat.as_dict(),
            "date": int(time.time()),
            "text": text,
        }
        if entities:
            message["entities"] = entities
        if replied is not None:
            message["reply_to_message"] = replied
        if isinstance(params.get("link_preview_options"), dict):
            message["link_preview_options"] = params["link_preview_options"]
        if markup is not None:
            message["reply_markup"] = markup
        chat.messages[message["message_id"]] = message
        chat.by_bot.append(message["message_id"])
        return copy.deepcopy(message)

    def _editable(self, params: dict[str, Any]) -> tuple[_Chat, dict]:
        if params.get("inline_message_id") is not None:
            raise _bad("MESSAGE_ID_INVALID")
        chat = self._chat(params)
        message = self._message_in(chat, params, "message to edit not found")
        if message["message_id"] not in chat.by_bot:
            raise _bad("message can't be edited")
        return chat, message

    def _api_edit_message_text(self, params: dict[str, Any]) -> dict[str, Any]:
        chat, message = self._editable(params)
        text, entities = self._text(params)
        markup = self._markup(params)
        if (
            message.get("text") == text
            and message.get("entities", []) == entities
            and message.get("reply_markup") == markup
        ):
            raise ApiError(400, NOT_MODIFIED)
        self._check_limits(chat)
        message["text"] = text
        message.pop("entities", None)
        message.pop("reply_markup", None)  # an edit without reply_markup drops the keyboard
        if entities:
            message["entities"] = entities
        if markup is not None:
            message["reply_markup"] = markup
        if isinstance(params.get("link_preview_options"), dict):
            message["link_preview_options"] = params["link_preview_options"]
        message["edit_date"] = int(time.time())
        self._edits[chat.id].append(copy.deepcopy(message))
        self.edited_at[(chat.id, int(message["message_id"]))].append(
            (time.monotonic(), str(message["text"]))
        )
        return copy.deepcopy(message)

    def _api_edit_message_reply_markup(self, params: dict[str, Any]) -> dict[str, Any]:
        chat, message = self._editable(params)
        markup = self._markup(params)
        if message.get("reply_markup") == markup:
            raise ApiError(400, NOT_MODIFIED)
        self._check_limits(chat)
        message.pop("reply_markup", None)
        if markup is not None:
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        return copy.deepcopy(message)

    def _api_delete_message(self, params: dict[str, Any]) -> bool:
        chat = self._chat(params)
        message = self._message_in(chat, params, "message to delete not found")
        mine = message["message_id"] in chat.by_bot
        if not mine and chat.is_group and not chat.bot_can_pin:
            raise _bad("message can't be deleted")
        chat.deleted.add(message["message_id"])
        return True

    def _api_send_chat_action(self, params: dict[str, Any]) -> bool:
        self._chat(params)
        return True

    def _api_answer_callback_query(self, params: dict[str, Any]) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self._open_queries:
            raise ApiError(400, QUERY_INVALID)
        text = params.get("text")
        if text is not None and len(str(text)) > MAX_CALLBACK_ANSWER_LENGTH:
            raise _bad("MESSAGE_TOO_LONG")
        self._open_queries.discard(query_id)
        self.callback_answers[query_id] = dict(params)
        self.callback_answered_at[query_id] = time.monotonic()
        return True

    def _commands_key(self, params: dict[str, Any]) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        if not isinstance(scope, dict) or "type" not in scope:
            raise _bad("can't parse BotCommandScope JSON object")
        kind = scope["type"]
        if kind in ("chat", "chat_administrators"):
            kind = f"{kind}:{scope.get('chat_id')}"
        elif kind == "chat_member":
            kind = f"chat_member:{scope.get('chat_id')}:{scope.get('user_id')}"
        elif kind not in (
            "default",
            "all_private_chats",
            "all_group_chats",
            "all_chat_administrators",
        ):
            raise _bad("unsupported bot command scope type")
        language = params.get("language_code") or ""
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise _bad("invalid language code specified")
        return kind, language

    def _api_set_my_commands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad("too many commands")
        cleaned = []
        for command in commands:
            if not isinstance(command, dict):
                raise _bad("can't parse BotCommand JSON object")
            name = str(command.get("command", ""))
            description = str(command.get("description", ""))
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": name, "description": description})
        key = self._commands_key(params)
        if cleaned:
            self.commands[key] = cleaned
        else:
            self.commands.pop(key, None)
        return True

    def _api_delete_my_commands(self, params: dict[str, Any]) -> bool:
        self.commands.pop(self._commands_key(params), None)
        return True

    def _api_get_my_commands(self, params: dict[str, Any]) -> list[dict]:
        return copy.deepcopy(self.commands.get(self._commands_key(params), []))

    def _api_pin_chat_message(self, params: dict[str, Any]) -> bool:
        chat = self._chat(params)
        message = self._message_in(chat, params, "message to pin not found")
        if chat.is_group and not chat.bot_can_pin:
            raise _bad("not enough rights to manage pinned messages in the chat")
        self.pinned[chat.id] = message["message_id"]
        return True

    def _api_unpin_chat_message(self, params: dict[str, Any]) -> bool:
        chat = self._chat(params)
        if chat.is_group and not chat.bot_can_pin:
            raise _bad("not enough rights to manage pinned messages in the chat")
        message_id = _int(params, "message_id", required=False)
        if message_id is None or self.pinned.get(chat.id) == message_id:
            self.pinned.pop(chat.id, None)
        return True

    def _api_unpin_all_chat_messages(self, params: dict[str, Any]) -> bool:
        chat = self._chat(params)
        if chat.is_group and not chat.bot_can_pin:
            raise _bad("not enough rights to manage pinned messages in the chat")
        self.pinned.pop(chat.id, None)
        return True

    def _api_set_message_reaction(self, params: dict[str, Any]) -> bool:
        from telegram.constants import ReactionEmoji

        chat = self._chat(params)
        message = self._message_in(chat, params, "message to react not found")
        reaction = params.get("reaction") or []
        if not isinstance(reaction, list):
            raise _bad("can't parse reaction types JSON object")
        if len(reaction) > 1:
            raise _bad("REACTIONS_TOO_MANY")
        allowed = {e.value for e in ReactionEmoji}
        for item in reaction:
            if not isinstance(item, dict):
                raise _bad("can't parse ReactionType JSON object")
            if item.get("type") == "emoji" and item.get("emoji") in allowed:
                continue
            if item.get("type") == "paid":
                continue
            raise _bad("REACTION_INVALID")
        self.reactions.append(
            {
                **params,
                "chat_id": chat.id,
                "message_id": message["message_id"],
                "reaction": reaction,
            }
        )
        return True

    def _api_get_chat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params, write=False)
        info: dict[str, Any] = {
            **chat.as_dict(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }
        pinned = self.pinned.get(chat.id)
        if pinned is not None and chat.live(pinned) is not None:
            info["pinned_message"] = copy.deepcopy(chat.messages[pinned])
        return info

    def _member_of(self, chat: _Chat, user_id: int) -> dict[str, Any]:
        if user_id == self.bot_id:
            if chat.is_group and chat.bot_can_pin:
                return _member("administrator", self._bot_user(), **_ADMIN_RIGHTS)
            return _member("member", self._bot_user())
        user = self._users.get(user_id)
        if user is None:
            raise _bad("user not found")
        if chat.type == "private":
            if user_id != chat.id:
                raise _bad("user not found")
            return _member("member", user.as_dict())
        if user_id == chat.creator:
            return _member("creator", user.as_dict(), is_anonymous=False)
        if user_id in chat.admins:
            return _member("administrator", user.as_dict(), **_ADMIN_RIGHTS)
        return _member("member", user.as_dict())

    def _api_get_chat_member(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params, write=False)
        user_id = _int(params, "user_id")
        assert user_id is not None
        return self._member_of(chat, user_id)

    def _api_get_chat_administrators(self, params: dict[str, Any]) -> list[dict]:
        chat = self._chat(params, write=False)
        if not chat.is_group:
            raise _bad("there are no administrators in the private chat")
        ids = [chat.creator] if chat.creator is not None else []
        ids += sorted(chat.admins - set(ids))
        if chat.bot_can_pin:
            ids.append(self.bot_id)
        return [self._member_of(chat, user_id) for user_id in ids]

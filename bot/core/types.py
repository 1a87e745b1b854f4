"""The platform-neutral types every front-end and handler speaks: Invocation in, Reply out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from storage.base import Community, Volunteer

T = TypeVar("T")


class Platform(StrEnum):
    """Where an invocation came from."""

    CONSOLE = "console"
    TELEGRAM = "telegram"
    DISCORD = "discord"


class ChatKind(StrEnum):
    """A one-to-one chat with the bot, or a community (group, server channel)."""

    PRIVATE = "private"
    GROUP = "group"


class Source(StrEnum):
    """How the volunteer asked: a typed command, a button press, or plain text."""

    COMMAND = "command"
    BUTTON = "button"
    TEXT = "text"


class Scope(StrEnum):
    """Who may run a command: anyone, a community's own admins there, or the coalition."""

    VOLUNTEER = "volunteer"
    COMMUNITY = "community"  # the admins of the community it is sent in, for that community
    COALITION = "coalition"  # the coalition's organizers, for the whole campaign


# The role an announcement pings is kept with its texts, under a key no language code can
# be: "<platform>:<community chat id>:<role id>" (handlers/announce.py). The outbox gives it
# to the transport of that one community's copy (bot/delivery/outbox.py); every other copy
# pings nobody.
PING_KEY = "@ping"


class Visibility(StrEnum):
    """Who sees a reply: everyone in the chat, or only the person who asked."""

    PUBLIC = "public"
    PRIVATE = "private"


class ReplyKind(StrEnum):
    """What a reply is, so an adapter can render it the platform's way."""

    ANSWER = "answer"
    BOARD = "board"


@dataclass(frozen=True, slots=True)
class Button:
    """A button under a reply; pressing it sends `action` back as a button invocation."""

    label: str
    action: str


@dataclass(frozen=True, slots=True)
class Reply:
    """One message for the platform to show; never holds platform objects."""

    text: str
    buttons: tuple[Button, ...] = ()
    visibility: Visibility = Visibility.PUBLIC
    kind: ReplyKind = ReplyKind.ANSWER
    locale: str = ""  # the reader's language, set by the dispatcher
    progress: int | None = None  # a broadcast whose progress this message shows, edited


@dataclass(frozen=True, slots=True)
class Invocation:
    """One request from a person: who, where, which command, and what the platform hints.

    Adapters fill the first part; the dispatcher adds the resolved locale, the stored
    volunteer and community, and the parsed arguments before a handler sees it.
    """

    platform: Platform
    user_id: str
    chat_id: str
    chat_kind: ChatKind
    command: str
    text: str = ""
    source: Source = Source.COMMAND
    language_hint: str | None = None
    is_organizer: bool = False  # a coalition organizer: steers the whole campaign
    is_admin: bool = False  # an admin of the community this was sent in (that one only)
    as_chat: bool = False  # sent on behalf of a chat (Telegram sender_chat), not by a person
    dm_address: str | None = None
    locale: str = "en"
    args: dict[str, str] = field(default_factory=dict)
    volunteer_key: bytes = b""  # the volunteer's (a linked account: its person's)
    account_key: bytes = b""  # this account's own key, linked or not
    volunteer: Volunteer | None = None
    community: Community | None = None

    @property
    def in_group(self) -> bool:
        """Whether this happened in a community rather than a private chat."""
        return self.chat_kind is ChatKind.GROUP

    def may(self, scope: Scope) -> bool:
        """Whether the person who sent this may run a command of that scope, here."""
        if scope is Scope.COALITION:
            return self.is_organizer
        if scope is Scope.COMMUNITY:
            return self.in_group and self.is_admin
        return True


def private(text: str, *buttons: Button) -> list[Reply]:
    """The usual answer: one reply, shown only to the person who asked."""
    return [Reply(text=text, buttons=buttons, visibility=Visibility.PRIVATE)]


def evolve(obj: T, **changes: object) -> T:
    """A copy of a frozen, slotted dataclass with some fields changed: what
    dataclasses.replace does, without re-running __init__ (the dispatcher does it three
    times per command, and replace costs several microseconds each)."""
    cls = type(obj)
    copier = _COPIERS.get(cls)
    if copier is None:
        copier = _COPIERS[cls] = _copier(cls)
    return copier(obj, changes)  # type: ignore[no-any-return]


# One copier per class, generated once (as dataclasses generate __init__): a straight line
# of attribute copies, about three times faster than a loop over the slots.
_COPIERS: dict[type, Callable[[object, dict[str, object]], object]] = {}


def _copier(cls: type) -> Callable[[object, dict[str, object]], object]:
    names: tuple[str, ...] = cls.__slots__  # type: ignore[attr-defined]
    lines = ["def copy(obj, changes):", "    new = make(cls)", "    pop = changes.pop"]
    lines += [f"    put(new, {n!r}, pop({n!r}) if {n!r} in changes else obj.{n})" for n in names]
    lines += ["    if changes:", "        raise TypeError(f'no field {next(iter(changes))!r}')"]
    lines += ["    return new"]
    scope: dict[str, Any] = {"make": object.__new__, "put": object.__setattr__, "cls": cls}
    exec("\n".join(lines), scope)  # the names are the class's own slots
    return scope["copy"]  # type: ignore[no-any-return]

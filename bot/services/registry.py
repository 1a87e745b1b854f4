"""The one list of commands: help text, argument parsing and every platform's registration."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from bot.core.i18n import P_, _
from bot.core.types import Invocation, Reply, Scope

if TYPE_CHECKING:
    from bot.services.container import Services

Handler = Callable[[Invocation, "Services"], Awaitable[list[Reply]]]

# Where a platform lists an argument's choices (Discord's slash commands), each choice is
# shown by a name in the reader's language (msgctxt "argument value"); the value sent back
# stays the same. Choices without a label of their own are named from this table, else by
# their value.
VALUE_CONTEXT = "argument value"
VALUE_LABELS = {
    "both": P_("argument value", "both"),
    "instagram": P_("argument value", "Instagram"),
    "facebook": P_("argument value", "Facebook"),
    "on": P_("argument value", "on"),
    "off": P_("argument value", "off"),
    "window": P_("argument value", "freeze window"),
    "reminder": P_("argument value", "reminder"),
    "confirm": P_("argument value", "confirm"),
}
# A role as a mention, the way Discord writes one: <@&id>.
ROLE_MENTION = re.compile(r"<@&([0-9]{1,20})>")


class ArgKind(StrEnum):
    """What an argument takes: words (a choice or free text), or a role of the community."""

    TEXT = "text"
    ROLE = "role"  # a role mention, <@&id>; optional ones are recognised by that shape


@dataclass(frozen=True, slots=True)
class Choice:
    """One allowed value of an argument, with the words that also mean it."""

    value: str
    aliases: tuple[str, ...] = ()
    scope: Scope | None = None  # choosing it needs this scope (e.g. /campaign window)
    label: str = ""  # msgid (msgctxt "argument value") naming it where choices are listed
    # The value and its aliases as `fold` leaves them, folded once here, not at every word.
    words: frozenset[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        words = frozenset((self.value, *(fold(alias) for alias in self.aliases)))
        object.__setattr__(self, "words", words)

    def matches(self, word: str) -> bool:
        """Whether a typed word means this choice (case and accents as typed are forgiven)."""
        return fold(word) in self.words

    @property
    def shown(self) -> str:
        """The name a list of choices shows, as a msgid of context VALUE_CONTEXT (its own
        label, else the common one for its value, else the value itself)."""
        return self.label or VALUE_LABELS.get(self.value, self.value)


@dataclass(frozen=True, slots=True)
class Arg:
    """One argument: a choice among values, or free text."""

    name: str
    choices: tuple[Choice, ...] = ()
    label: str = ""  # msgid: the argument's description (usage shows it for free text)
    required: bool = False
    rest: bool = False  # takes the rest of the line
    kind: ArgKind = ArgKind.TEXT
    # Every folded word of every choice, to the choice it means (the first listed wins).
    _meaning: dict[str, Choice] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        meaning: dict[str, Choice] = {}
        for choice in self.choices:
            for word in choice.words:
                meaning.setdefault(word, choice)
        object.__setattr__(self, "_meaning", meaning)

    def choice(self, word: str) -> Choice | None:
        """The choice a typed word means, if any."""
        return self._meaning.get(fold(word))

    def fits(self, word: str) -> bool:
        """Whether a typed word has the shape this argument takes (any word, for text)."""
        return self.kind is not ArgKind.ROLE or ROLE_MENTION.fullmatch(word) is not None

    def usage(self) -> str:
        """How the argument is written in a usage line."""
        shown = "|".join(c.value for c in self.choices) if self.choices else _(self.label)
        return f"<{shown}>" if self.required else f"[{shown}]"


@dataclass(frozen=True, slots=True)
class Command:
    """A command: its name, one-line help (msgid), handler and arguments."""

    name: str
    summary: str
    handler: Handler
    args: tuple[Arg, ...] = ()
    scope: Scope = Scope.VOLUNTEER  # community scope implies: only in a community
    hidden: bool = False
    public: bool = False  # answers for everyone in the chat (else for the asker alone)
    lists_commands: bool = False  # shows commands by role (help): the front-end checks roles

    @property
    def scopes(self) -> frozenset[Scope]:
        """Every scope this command or one of its choices needs."""
        found = {self.scope}
        found.update(c.scope for arg in self.args for c in arg.choices if c.scope is not None)
        return frozenset(found)

    def required(self, args: dict[str, str]) -> Scope:
        """The scope needed to run it with these parsed arguments (the highest one chosen)."""
        needed = [self.scope]
        for arg in self.args:
            chosen = args.get(arg.name)
            for choice in arg.choices:
                if choice.value == chosen and choice.scope is not None:
                    needed.append(choice.scope)
        return max(needed, key=RANK.__getitem__)

    def usage(self) -> str:
        """The usage line, e.g. `/pledge [instagram|facebook|both]`."""
        return " ".join([f"/{self.name}", *(arg.usage() for arg in self.args)])


RANK = {Scope.VOLUNTEER: 0, Scope.COMMUNITY: 1, Scope.COALITION: 2}


class UsageError(Exception):
    """The arguments do not fit the command; `value` is the offending word, if any."""

    def __init__(self, command: Command, value: str | None = None) -> None:
        super().__init__(command.name)
        self.command = command
        self.value = value


def fold(word: str) -> str:
    """Case-fold and drop accents and Arabic diacritics, for matching typed words."""
    if word.isascii():  # nothing to decompose: the common case, an order of magnitude faster
        return word.casefold().strip()
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).strip()


_COMMAND_HEAD = re.compile(r"/(\S*)(.*)", re.DOTALL)
_WORD = re.compile(r"\S+")


def split_command(text: str) -> tuple[str, str, str]:
    """Split a typed `/name@bot rest` into (name, addressee, rest): the name ends at any
    whitespace (a space, a line break, a no-break space), and the rest keeps its lines."""
    match = _COMMAND_HEAD.match(text.lstrip())
    if match is None:
        return "", "", text.strip()
    name, _, addressee = match.group(1).partition("@")
    return name.lower(), addressee, match.group(2).strip()


def parse_args(command: Command, text: str) -> dict[str, str]:
    """Split the text after a command into its named arguments, or raise UsageError."""
    tokens = [(match.group(), match.start()) for match in _WORD.finditer(text)]
    words = [token for token, _ in tokens]
    values: dict[str, str] = {}
    for arg in command.args:
        if not words:
            if arg.required:
                raise UsageError(command)
            break
        if not arg.fits(words[0]):
            if arg.required:
                raise UsageError(command, words[0])
            continue  # an optional argument recognised by its shape, left out
        if arg.rest:  # the rest of the text as typed, line breaks included
            values[arg.name] = text[tokens[len(tokens) - len(words)][1] :].strip()
            words = []
            break
        word = words.pop(0)
        if arg.choices:
            choice = arg.choice(word)
            if choice is None:
                raise UsageError(command, word)
            values[arg.name] = choice.value
        else:
            values[arg.name] = word
    if words:
        raise UsageError(command, words[0])
    return values


class Registry:
    """Commands by name, in the order they were added."""

    def __init__(self, commands: Iterable[Command] = ()) -> None:
        self._commands: dict[str, Command] = {}
        for command in commands:
            self.add(command)

    def add(self, command: Command) -> None:
        """Register a command; names are unique and fit every platform ([a-z0-9_]{1,32})."""
        if command.name in self._commands:
            raise ValueError(f"command /{command.name} is registered twice")
        if not (1 <= len(command.name) <= 32) or not all(
            c.isascii() and (c.islower() or c.isdigit() or c == "_") for c in command.name
        ):
            raise ValueError(f"command name {command.name!r} does not fit Telegram and Discord")
        self._commands[command.name] = command

    def get(self, name: str) -> Command | None:
        """The command called name, if any."""
        return self._commands.get(name)

    def __iter__(self) -> Iterator[Command]:
        return iter(self._commands.values())

    def __len__(self) -> int:
        return len(self._commands)

    def menu(self, *scopes: Scope) -> list[tuple[str, str]]:
        """(name, description) pairs in the current language, for a platform's command menu."""
        return [(command.name, _(command.summary)) for command in self.listed(*scopes)]

    def listed(self, *scopes: Scope) -> list[Command]:
        """The commands to show someone who holds these scopes, in help and menus."""
        held = {Scope.VOLUNTEER, *scopes}
        return [c for c in self._commands.values() if not c.hidden and c.scope in held]

    def checks_admin(self, name: str) -> bool:
        """Whether a front-end must find out if the sender is a community admin for it
        (a platform look-up it can skip for every other command)."""
        command = self._commands.get(name)
        return command is not None and (Scope.COMMUNITY in command.scopes or command.lists_commands)

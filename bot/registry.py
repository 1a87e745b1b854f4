"""The one list of commands: help text, argument parsing and every platform's registration."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.core import Invocation, Reply
from bot.i18n import _

if TYPE_CHECKING:
    from bot.services import Services

Handler = Callable[[Invocation, "Services"], Awaitable[list[Reply]]]


@dataclass(frozen=True, slots=True)
class Choice:
    """One allowed value of an argument, with the words that also mean it."""

    value: str
    aliases: tuple[str, ...] = ()

    def matches(self, word: str) -> bool:
        """Whether a typed word means this choice (case and accents as typed are forgiven)."""
        folded = fold(word)
        return folded == self.value or folded in (fold(alias) for alias in self.aliases)


@dataclass(frozen=True, slots=True)
class Arg:
    """One argument: a choice among values, or free text."""

    name: str
    choices: tuple[Choice, ...] = ()
    label: str = ""  # msgid: the argument's description (usage shows it for free text)
    required: bool = False
    rest: bool = False  # takes the rest of the line

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
    organizer_only: bool = False
    group_only: bool = False
    hidden: bool = False
    public: bool = False  # answers for everyone in the chat (else for the asker alone)

    def usage(self) -> str:
        """The usage line, e.g. `/pledge [instagram|facebook|both]`."""
        return " ".join([f"/{self.name}", *(arg.usage() for arg in self.args)])


class UsageError(Exception):
    """The arguments do not fit the command; `value` is the offending word, if any."""

    def __init__(self, command: Command, value: str | None = None) -> None:
        super().__init__(command.name)
        self.command = command
        self.value = value


def fold(word: str) -> str:
    """Case-fold and drop accents and Arabic diacritics, for matching typed words."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).strip()


def parse_args(command: Command, text: str) -> dict[str, str]:
    """Split the text after a command into its named arguments, or raise UsageError."""
    tokens = [(match.group(), match.start()) for match in re.finditer(r"\S+", text)]
    words = [token for token, _ in tokens]
    values: dict[str, str] = {}
    for arg in command.args:
        if not words:
            if arg.required:
                raise UsageError(command)
            break
        if arg.rest:  # the rest of the text as typed, line breaks included
            values[arg.name] = text[tokens[len(tokens) - len(words)][1] :].strip()
            words = []
            break
        word = words.pop(0)
        if arg.choices:
            choice = next((c for c in arg.choices if c.matches(word)), None)
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

    def menu(self, organizer: bool) -> list[tuple[str, str]]:
        """(name, description) pairs in the current language, for a platform's command menu."""
        return [(command.name, _(command.summary)) for command in self.listed(organizer)]

    def listed(self, organizer: bool) -> list[Command]:
        """The commands to show someone in help and menus."""
        return [
            c
            for c in self._commands.values()
            if not c.hidden and (organizer or not c.organizer_only)
        ]

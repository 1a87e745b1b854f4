"""The console front-end: one simulated community with several volunteers, on the same core.

Lines starting with `/` are commands, sent as the current volunteer in the current chat.
Lines starting with `:` steer the simulation (`:help` lists them). Anything else is plain
text, as a volunteer would type it. With a script on standard input it runs unattended.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TextIO

from bot.core.text import parse_whole
from bot.core.types import (
    Button,
    ChatKind,
    Invocation,
    Platform,
    Reply,
    ReplyKind,
    Source,
    Visibility,
)
from bot.delivery.outbox import OnSend, Outcome
from bot.delivery.progress import Edit, ProgressReports
from bot.services.dispatch import Dispatcher
from bot.services.registry import split_command

log = logging.getLogger(__name__)

COMMUNITY = "console-community"
# Commands that may change the counts: boards and the campaign page follow them.
COUNT_CHANGING = frozenset({"pledge", "unpledge", "forget", "start", "done"})
META_HELP = """\
:as NAME            speak as volunteer NAME (created on first use)
:hint ar|fr|en|none the language the volunteer's app reports
:organizer on|off   give or take the coalition organizer role (the whole campaign)
:admin on|off       give or take the community admin role (this community only)
:private / :group   talk to the bot privately, or in the community
:press N            press button N of the last answer
:who                show who is speaking, where, and how
:quit               leave"""


@dataclass(slots=True)
class Speaker:
    """Who the console is speaking as, and where."""

    name: str = "amina"
    hint: str | None = None
    organizer: bool = False
    admin: bool = False
    chat: ChatKind = ChatKind.GROUP

    @property
    def chat_id(self) -> str:
        """The simulated chat this speaker is in."""
        return COMMUNITY if self.chat is ChatKind.GROUP else f"dm-{self.name}"


class Console:
    """Reads lines, turns them into invocations, prints the replies."""

    def __init__(self, dispatcher: Dispatcher, out: TextIO = sys.stdout) -> None:
        self.dispatcher = dispatcher
        self.out = out
        services = dispatcher.services
        self.progress = ProgressReports(services, services.settings.board_interval)
        self.speaker = Speaker()
        self.interactive = False  # at a terminal the typed line is already on screen
        # Buttons on screen: public ones per chat, private ones per chat and person; each
        # with the sequence number of the answer that showed them, so :press takes the latest.
        self._buttons: dict[tuple[str, str | None], tuple[int, list[Button]]] = {}
        self._answers = 0

    def _print(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    async def run(self, source: TextIO = sys.stdin) -> None:
        """Read lines until end of input or `:quit`."""
        interactive = self.interactive = source.isatty()
        if interactive:
            self._print("coalition-bot console — type /help for commands, :help to steer.")
        loop = asyncio.get_running_loop()
        while True:
            if interactive:
                self.out.write(self._prompt())
                self.out.flush()
            line = await loop.run_in_executor(None, source.readline)
            if not line:
                break
            if not await self.feed(line.rstrip("\r\n")):
                break

    def _prompt(self) -> str:
        where = "private" if self.speaker.chat is ChatKind.PRIVATE else "group"
        return f"{self.speaker.name}@{where} › "

    async def feed(self, line: str) -> bool:
        """Handle one input line; False means quit."""
        line = line.strip()
        if not line or line.startswith("#"):
            return True
        if line.startswith(":"):
            return await self._meta(line[1:])
        if not self.interactive:
            self._print(f"{self.speaker.name} › {line}")
        if line.startswith("/"):
            name, _, rest = split_command(line)
            await self._send(name, rest, Source.COMMAND)
        else:
            await self._send("", line, Source.TEXT)
        return True

    async def _send(self, command: str, text: str, source: Source) -> None:
        speaker = self.speaker
        invocation = Invocation(
            platform=Platform.CONSOLE,
            user_id=speaker.name,
            chat_id=speaker.chat_id,
            chat_kind=speaker.chat,
            command=command,
            text=text,
            source=source,
            language_hint=speaker.hint,
            is_organizer=speaker.organizer,
            is_admin=speaker.admin and speaker.chat is ChatKind.GROUP,
            dm_address=f"dm-{speaker.name}",
        )
        replies = await self.dispatcher.handle(invocation)
        if command in COUNT_CHANGING:
            self.dispatcher.services.counts_changed()
        self._show(replies)

    def _show(self, replies: list[Reply]) -> None:
        if not replies:
            self._print("  (no answer)")
            return
        self._answers += 1
        numbered = 0
        for reply in replies:
            private = reply.visibility is Visibility.PRIVATE
            if reply.kind is ReplyKind.BOARD:
                head = "bot [board]:"
            elif private and self.speaker.chat is ChatKind.GROUP:
                head = f"bot (only {self.speaker.name} sees this):"
            else:
                head = "bot:"
            lines = reply.text.split("\n")
            self._print(f"  {head} {lines[0]}")
            for extra in lines[1:]:
                self._print(f"    {extra}" if extra else "")
            if reply.progress is not None:
                self._follow(reply.progress, reply.locale, self.speaker.chat_id, head)
            if reply.buttons:
                owner = self.speaker.name if private else None
                self._buttons[(self.speaker.chat_id, owner)] = (self._answers, list(reply.buttons))
                for button in reply.buttons:
                    numbered += 1
                    self._print(f"    [{numbered}] {button.label}")

    def _follow(self, broadcast_id: int, locale: str, chat_id: str, head: str) -> None:
        """Show a broadcast's progress (a terminal cannot edit: each change is a new line)."""
        where = {"platform": Platform.CONSOLE.value, "chat": chat_id, "head": head}
        self.progress.follow(broadcast_id, locale, self._printer(where), where)

    def _printer(self, where: dict[str, Any]) -> Edit:
        async def edit(text: str, final: bool) -> None:
            lines = text.split("\n")
            self._print(f"  {where['head']} [{where['chat']}, edited] {lines[0]}")
            for extra in lines[1:]:
                self._print(f"    {extra}" if extra else "")

        return edit

    async def start(self) -> None:
        """Pick up the progress messages a previous run left unfinished."""
        await self.progress.resume(Platform.CONSOLE.value, self._printer)

    async def close(self) -> None:
        """Stop following progress messages."""
        await self.progress.close()

    def _visible_buttons(self) -> list[Button]:
        """The buttons of the latest answer the speaker can see in their chat."""
        chat = self.speaker.chat_id
        mine = self._buttons.get((chat, self.speaker.name), (0, []))
        everyone = self._buttons.get((chat, None), (0, []))
        return max(mine, everyone, key=lambda entry: entry[0])[1]

    # -- outbox transport: reminders and announcements arrive here ------------------------

    platform = Platform.CONSOLE.value
    resend_within = timedelta(days=365)  # a terminal shows a resent line, nothing worse

    window = 64  # deliveries in flight at once

    async def deliver(
        self,
        address: str,
        text: str,
        nonce: str,
        buttons: tuple[Button, ...] = (),
        on_send: OnSend | None = None,
    ) -> Outcome:
        """Show a message the outbox sends to a simulated chat, with its buttons."""
        if on_send is not None:
            await on_send()
        lines = text.split("\n")
        self._print(f"  bot → {address}: {lines[0]}")
        for extra in lines[1:]:
            self._print(f"    {extra}" if extra else "")
        if buttons:
            self._answers += 1
            self._buttons[(address, None)] = (self._answers, list(buttons))
            for number, button in enumerate(buttons, start=1):
                self._print(f"    [{number}] {button.label}")
        return Outcome.SENT

    async def _meta(self, line: str) -> bool:
        word, _, arg = line.strip().partition(" ")
        arg = arg.strip()
        speaker = self.speaker
        if word in ("quit", "q", "exit"):
            return False
        if word == "as" and arg:
            speaker.name = arg.split()[0]
        elif word == "hint":
            speaker.hint = None if arg in ("", "none") else arg
        elif word == "organizer" and arg in ("on", "off"):
            speaker.organizer = arg == "on"
        elif word == "admin" and arg in ("on", "off"):
            speaker.admin = arg == "on"
        elif word == "private":
            speaker.chat = ChatKind.PRIVATE
        elif word == "group":
            speaker.chat = ChatKind.GROUP
        elif word == "press":
            return await self._press(arg)
        elif word == "who":
            pass
        else:
            self._print(META_HELP)
            return True
        roles = [
            name
            for name, held in (("coalition organizer", speaker.organizer), ("admin", speaker.admin))
            if held
        ]
        role = " and ".join(roles) or "volunteer"
        self._print(
            f"  (now: {speaker.name}, {role}, {speaker.chat} chat, "
            f"language hint {speaker.hint or 'none'})"
        )
        return True

    async def _press(self, arg: str) -> bool:
        buttons = self._visible_buttons()
        number = parse_whole(arg, len(buttons))
        if not number:
            self._print(f"  (no button {arg or '?'}: the last answer had {len(buttons)})")
            return True
        button = buttons[number - 1]
        self._print(f"{self.speaker.name} › [presses “{button.label}”]")
        command, _, rest = button.action.partition(" ")
        await self._send(command, rest, Source.BUTTON)
        return True

"""Discord front-end on discord.py: slash commands and buttons become Invocations, Replies
interaction responses, embeds and edits.

It translates only. Slash commands are generated from the core's registry, with French
names, descriptions and choice names through an app_commands.Translator; answers meant for
one person are ephemeral; the board is an embed with a persistent button, kept up to date
by the shared BoardUpdater; mentions are off unless an organizer asks for one role of the
home server explicitly (an announcement's copy there). A server without a language of its
own takes its preferred locale's, when the bot speaks it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import discord
from discord import app_commands

from bot.core.i18n import P_, SOURCE_LANGUAGE
from bot.core.text import split_text
from bot.core.types import (
    Button,
    ChatKind,
    Invocation,
    Platform,
    Reply,
    ReplyKind,
    Scope,
    Source,
    Visibility,
)
from bot.delivery.boards import BoardUpdater, Latest
from bot.delivery.outbox import OnSend, Outcome, RetryLater
from bot.delivery.pacing import Pacer
from bot.delivery.progress import Edit, ProgressReports
from bot.services.container import BOARDS, Services
from bot.services.dispatch import Dispatcher
from bot.services.registry import VALUE_CONTEXT, ArgKind, Command
from bot.services.render import render_board

log = logging.getLogger(__name__)

PLEDGE_BUTTON_ID = "coalition:pledge"
# Buttons under outbox messages (the check-in's "I froze my accounts") outlive the process:
# their custom id names the command they run, and a persistent view answers them.
OUTBOX_ACTIONS = ("done",)
DM_CACHE = 50_000  # private channel ids remembered (user id -> channel id)
# A private message to someone whose channel is not remembered is two requests against the
# bot's global limit: opening the channel, then the message. A fan-out is planned for that.
REQUESTS_PER_DM = 2
SEND_ATTEMPTS = 4
# Unknown Message, Cannot edit a message authored by another user, archived-thread edits.
REPOST_CODES = frozenset({10008, 50005, 50083})
DEFER_AFTER = 2.0  # seconds: Discord wants a first answer within 3
CONTENT_LIMIT = 2000
EMBED_DESCRIPTION_LIMIT = 4096
BOARD_COLOUR = discord.Colour(0xC0392B)
COUNT_CHANGING = frozenset({"pledge", "unpledge", "forget", "done"})
LANGUAGE_CACHE = 50_000  # servers whose community language this process has settled

# Command names as Discord users see them in their language (msgctxt "command name"). Every
# command of the registry needs one; tests/test_discord_e2e.py checks it.
COMMAND_NAMES = (
    P_("command name", "help"),
    P_("command name", "pledge"),
    P_("command name", "unpledge"),
    P_("command name", "mypledge"),
    P_("command name", "tally"),
    P_("command name", "board"),
    P_("command name", "campaign"),
    P_("command name", "language"),
    P_("command name", "timezone"),
    P_("command name", "reminders"),
    P_("command name", "subscribe"),
    P_("command name", "mydata"),
    P_("command name", "forget"),
    P_("command name", "announce"),
    P_("command name", "done"),
    P_("command name", "tallypost"),
    P_("command name", "webpage"),
    P_("command name", "link"),
    P_("command name", "unlink"),
)
NAME_CONTEXT = "command name"


class CatalogTranslator(app_commands.Translator):
    """Gives Discord the command names, descriptions and options from our catalogs, for each
    Discord locale that has one."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        """The translation for one Discord locale, or None to keep the English."""
        # Discord's own locales ("fr", "es-ES"…) that have a catalog; Arabic is not one of them.
        language = self.services.catalogs.match(locale.value)
        if language is None or language == SOURCE_LANGUAGE:
            return None
        translator = self.services.catalogs.get(language)
        message = string.message
        if context.location is app_commands.TranslationContextLocation.command_name:
            translated = translator.pgettext(NAME_CONTEXT, message)
            return translated if translated != message else None
        if context.location is app_commands.TranslationContextLocation.choice_name:
            # A choice's name (msgctxt "argument value"); the value sent back is the same
            # in every language. Languages are named in themselves, untranslated.
            translated = translator.pgettext(VALUE_CONTEXT, message)
            return translated if translated != message else None
        translated = translator.gettext(message)
        return translated if translated != message else None


class BoardView(discord.ui.View):
    """The persistent "I pledge" button under every board; it survives restarts."""

    def __init__(self, frontend: DiscordFrontend, label: str = "I pledge") -> None:
        super().__init__(timeout=None)
        button: discord.ui.Button[BoardView] = discord.ui.Button(
            label=label, style=discord.ButtonStyle.success, custom_id=PLEDGE_BUTTON_ID
        )
        button.callback = self._pressed  # type: ignore[method-assign]
        self.add_item(button)
        self.frontend = frontend

    async def _pressed(self, interaction: discord.Interaction) -> None:
        await self.frontend.on_button(interaction, "pledge", "")


class ActionView(discord.ui.View):
    """Persistent buttons under outbox messages; each runs the command it is named after."""

    def __init__(self, frontend: DiscordFrontend, buttons: tuple[Button, ...] = ()) -> None:
        super().__init__(timeout=None)
        self.frontend = frontend
        shown = buttons or tuple(Button(action, action) for action in OUTBOX_ACTIONS)
        for shown_button in shown:
            item: discord.ui.Button[ActionView] = discord.ui.Button(
                label=shown_button.label[:80],
                style=discord.ButtonStyle.success,
                custom_id=f"coalition:{shown_button.action}",
            )
            item.callback = self._pressed(shown_button.action)  # type: ignore[method-assign]
            self.add_item(item)

    def _pressed(self, action: str) -> Any:
        async def pressed(interaction: discord.Interaction) -> None:
            await self.frontend.on_button(interaction, action, "")

        return pressed


class CoalitionClient(discord.AutoShardedClient):
    """The discord.py client, sharded when Discord asks for it; set-up runs in setup_hook."""

    def __init__(self, frontend: DiscordFrontend, **options: Any) -> None:
        super().__init__(**options)
        self.frontend = frontend
        self.tree: app_commands.CommandTree[CoalitionClient] = app_commands.CommandTree(self)

    async def setup_hook(self) -> None:
        """Runs once after login, before the gateway connects."""
        await self.frontend.setup_hook()

    async def on_ready(self) -> None:
        """Every shard is connected and has seen its servers (again, after a new session)."""
        for guild in list(self.guilds):
            await self.frontend.adopt_server_language(guild.id)

    async def on_guild_join(self, guild: discord.Guild) -> None:
        """The bot was added to a server."""
        await self.frontend.adopt_server_language(guild.id)

    async def on_guild_update(self, before: discord.Guild, after: discord.Guild) -> None:
        """A server's settings changed: its preferred locale may have."""
        if before.preferred_locale != after.preferred_locale:
            await self.frontend.server_locale_changed(
                after.id, str(before.preferred_locale), str(after.preferred_locale)
            )


class DiscordFrontend:
    """One Discord bot on the shared command core."""

    def __init__(self, services: Services, dispatcher: Dispatcher) -> None:
        self.services = services
        self.dispatcher = dispatcher
        settings = services.settings
        # Under the global 50 requests/s, and about 1 message/s per channel (Discord's
        # channel buckets allow 5 per 5 s).
        self.pacer = Pacer(settings.discord_rate_overall, 1.0, 60.0)
        self.boards = BoardUpdater(
            self._render_board, self._edit_board, interval=settings.board_interval
        )
        services.count_listeners.append(lambda: self.boards.touch(None))
        self.progress = ProgressReports(services, settings.board_interval)
        # Boards and progress messages are edited by the leading process only (`lead`).
        self.boards.leading = self.progress.leading = False
        self.boards.untracked = self._tell_leader_of_boards
        self._dm_channels: OrderedDict[int, int] = OrderedDict()
        # Servers whose community has a language (its admins' or its locale's): not looked
        # up again at every interaction.
        self._languages_settled: OrderedDict[str, None] = OrderedDict()
        self.client = self.build_client()

    # -- construction -------------------------------------------------------------------

    def build_client(self) -> CoalitionClient:
        """The discord.py client: no message content, no mentions by default."""
        settings = self.services.settings
        intents = discord.Intents.none()
        intents.guilds = True
        options: dict[str, Any] = {}
        if settings.discord_shard_count is not None:
            options["shard_count"] = settings.discord_shard_count
        if settings.discord_shard_ids:  # this process's share of the shards
            options["shard_ids"] = sorted(int(shard) for shard in settings.discord_shard_ids)
        client = CoalitionClient(
            self,
            intents=intents,
            allowed_mentions=discord.AllowedMentions.none(),
            **options,
        )
        for command in self.services.registry:
            if not command.hidden:
                client.tree.add_command(self._slash(command))
        return client

    @property
    def tree(self) -> app_commands.CommandTree[Any]:
        """The client's command tree."""
        return self.client.tree

    def _slash(self, command: Command) -> app_commands.Command[Any, Any, Any]:
        """A slash command generated from a registry command: typed options, choices."""

        async def callback(
            interaction: discord.Interaction, **options: str | discord.Role | None
        ) -> None:
            # The words in the registry's order, as they would be typed: a role as its
            # mention (@everyone's too, which the core refuses by its id).
            words: list[str] = []
            for arg in command.args:
                value = options.get(arg.name)
                if isinstance(value, discord.Role):
                    words.append(f"<@&{value.id}>")
                elif value:
                    words.append(value)
            await self.on_command(interaction, command.name, " ".join(words))

        parameters = [
            inspect.Parameter(
                "interaction",
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                annotation=discord.Interaction,
            )
        ]
        for arg in command.args:
            kind: Any = discord.Role if arg.kind is ArgKind.ROLE else str
            annotation: Any = kind if arg.required else (kind | None)
            parameters.append(
                inspect.Parameter(
                    arg.name,
                    inspect.Parameter.POSITIONAL_OR_KEYWORD,
                    annotation=annotation,
                    default=inspect.Parameter.empty if arg.required else None,
                )
            )
        callback.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        callback.__annotations__ = {p.name: p.annotation for p in parameters}
        slash: app_commands.Command[Any, Any, Any] = app_commands.Command(
            name=app_commands.locale_str(command.name),
            description=app_commands.locale_str(command.summary),
            callback=callback,
        )
        for arg in command.args:
            if arg.choices:
                slash._params[arg.name].choices = [
                    app_commands.Choice(name=app_commands.locale_str(c.shown), value=c.value)
                    for c in arg.choices
                ]
            if arg.label:
                slash._params[arg.name].description = app_commands.locale_str(arg.label)
        if command.scope is not Scope.VOLUNTEER:
            # Only a hint for Discord's menus (a server may change it); the core decides.
            slash.default_permissions = discord.Permissions(manage_guild=True)
        if command.scope is Scope.COMMUNITY:
            slash.guild_only = True
        return slash

    async def setup_hook(self) -> None:
        """Translator, persistent board button, boards to follow, command sync."""
        await self.tree.set_translator(CatalogTranslator(self.services))
        self.client.add_view(BoardView(self))
        self.client.add_view(ActionView(self))
        sync = self.services.settings.discord_sync
        if sync == "global":
            await self.tree.sync()
        elif sync.isdigit():
            guild = discord.Object(id=int(sync))
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Log in (a bad token stops start-up here), then connect in the background."""
        token = self.services.settings.discord_token
        assert token is not None
        await self.client.login(token.get_secret_value())
        self._gateway = asyncio.create_task(self.client.connect())
        log.info("discord: logged in as %s", self.client.user)

    async def lead(self) -> None:
        """This process leads: edit the boards and progress messages."""
        self.boards.leading = self.progress.leading = True
        await self.follow_boards()
        await self.resume_progress()

    async def follow(self) -> None:
        """Another process leads (or none): stop editing."""
        await self.boards.release()
        await self.progress.release()

    def _tell_leader_of_boards(self) -> None:
        if self.services.relay is not None:
            self.services.relay(BOARDS)

    async def resume_progress(self) -> None:
        """Edit every stored unfinished progress message not followed yet (when leading)."""
        await self.progress.resume("discord", self._report_by_dm)

    async def follow_boards(self) -> None:
        """Edit every stored board this process does not edit yet (when leading)."""
        if not self.boards.leading:
            return
        for chat_id, ref in await self.services.storage.boards("discord"):
            if not self.boards.tracks(chat_id, ref):
                self.boards.track(chat_id, ref, await self._render_board(chat_id))
                self.boards.touch(chat_id)

    async def stop(self) -> None:
        """Disconnect."""
        await self.boards.close()
        await self.progress.close()
        await self.client.close()
        gateway = getattr(self, "_gateway", None)
        if gateway is not None:
            await asyncio.gather(gateway, return_exceptions=True)

    # -- interactions in ----------------------------------------------------------------

    def _invocation(
        self, interaction: discord.Interaction, command: str, text: str, source: Source
    ) -> Invocation:
        in_guild = interaction.guild_id is not None
        return Invocation(
            platform=Platform.DISCORD,
            user_id=str(interaction.user.id),
            chat_id=str(interaction.guild_id if in_guild else interaction.channel_id),
            chat_kind=ChatKind.GROUP if in_guild else ChatKind.PRIVATE,
            command=command,
            text=text,
            source=source,
            language_hint=self._hint(interaction),
            is_organizer=self._is_organizer(interaction),
            is_admin=self._is_admin(interaction),
            dm_address=str(interaction.user.id),
        )

    def _hint(self, interaction: discord.Interaction) -> str | None:
        """The client's locale when we speak it, else the server's (Arabic is neither)."""
        for locale in (interaction.locale, interaction.guild_locale):
            if locale is not None and self.services.catalogs.match(str(locale)):
                return str(locale)
        return None

    def _is_organizer(self, interaction: discord.Interaction) -> bool:
        """A coalition organizer: a configured id anywhere, or in the coalition's home server
        a member with Manage Server or the organizer role. Nobody else, whatever server
        they administer."""
        settings = self.services.settings
        if str(interaction.user.id) in settings.organizer_ids("discord"):
            return True
        home = settings.discord_home_guild_id
        member = interaction.user
        if home is None or interaction.guild_id != home or not isinstance(member, discord.Member):
            return False
        if member.guild_permissions.manage_guild:
            return True
        role = settings.discord_organizer_role
        return role is not None and any(r.id == role for r in member.roles)

    def _is_admin(self, interaction: discord.Interaction) -> bool:
        """An admin of the server the interaction came from, for that server only."""
        member = interaction.user
        if interaction.guild_id is None or not isinstance(member, discord.Member):
            return False
        if member.guild_permissions.manage_guild:
            return True
        home = self.services.settings.discord_home_guild_id
        return interaction.guild_id == home and self._is_organizer(interaction)

    async def on_command(self, interaction: discord.Interaction, command: str, text: str) -> None:
        """A slash command: run it through the core, deferring if it takes long."""
        invocation = self._invocation(interaction, command, text, Source.COMMAND)
        await self._before(invocation)
        replies = await self._handle(interaction, invocation)
        await self._respond(interaction, invocation, replies)
        await self._after(invocation)

    async def on_button(self, interaction: discord.Interaction, command: str, text: str) -> None:
        """A press on the board's button."""
        invocation = self._invocation(interaction, command, text, Source.BUTTON)
        await self._before(invocation)
        replies = await self._handle(interaction, invocation)
        await self._respond(interaction, invocation, replies)
        await self._after(invocation)

    async def _handle(
        self, interaction: discord.Interaction, invocation: Invocation
    ) -> list[Reply]:
        task = asyncio.ensure_future(self.dispatcher.handle(invocation))
        done, _ = await asyncio.wait({task}, timeout=DEFER_AFTER)
        if not done:
            command = self.services.registry.get(invocation.command)
            public = command is not None and command.public and invocation.source is Source.COMMAND
            await interaction.response.defer(ephemeral=not public, thinking=True)
        return await task

    # -- replies out --------------------------------------------------------------------

    async def _respond(
        self, interaction: discord.Interaction, invocation: Invocation, replies: list[Reply]
    ) -> None:
        for reply in replies:
            ephemeral = reply.visibility is Visibility.PRIVATE
            if reply.kind is ReplyKind.BOARD:
                await self._post_board(interaction, invocation, reply)
                continue
            if reply.progress is not None:
                edit = await self._send_progress(interaction, reply.text, ephemeral=ephemeral)
                where = {"platform": "discord", "user": interaction.user.id}
                self.progress.follow(reply.progress, reply.locale, edit, where)
                continue
            pieces = split_text(reply.text, CONTENT_LIMIT)
            for index, piece in enumerate(pieces):
                view = self._view(reply) if index == len(pieces) - 1 else None
                await self._send(interaction, piece, ephemeral=ephemeral, view=view)
        if not replies and not interaction.response.is_done():
            await interaction.response.defer(ephemeral=True)

    async def _send(
        self,
        interaction: discord.Interaction,
        content: str,
        *,
        ephemeral: bool,
        view: discord.ui.View | None = None,
        embed: discord.Embed | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {"ephemeral": ephemeral}
        if view is not None:
            kwargs["view"] = view
        if embed is not None:
            kwargs["embed"] = embed
        if not interaction.response.is_done():
            await interaction.response.send_message(content or None, **kwargs)
        else:
            await interaction.followup.send(content or discord.utils.MISSING, **kwargs)

    async def _send_progress(
        self, interaction: discord.Interaction, content: str, *, ephemeral: bool
    ) -> Edit:
        """Send a progress message; how to edit it later. An interaction's token lasts
        15 minutes, so a report that can no longer be edited in comes by private message."""
        content = content[:CONTENT_LIMIT]
        editor: Callable[[str], Awaitable[Any]]
        if not interaction.response.is_done():
            await interaction.response.send_message(content, ephemeral=ephemeral)

            async def editor(text: str) -> None:
                await interaction.edit_original_response(content=text)

        else:
            sent = await interaction.followup.send(content, ephemeral=ephemeral, wait=True)

            async def editor(text: str) -> None:
                await sent.edit(content=text)

        report = self._report_by_dm({"user": interaction.user.id})

        async def edit(text: str, final: bool) -> None:
            try:
                await editor(text[:CONTENT_LIMIT])
            except discord.HTTPException:
                if not final:
                    raise
                await report(text, final)

        return edit

    def _report_by_dm(self, where: dict[str, Any]) -> Edit:
        """The final report by private message to the organizer in `where` (what is left
        when the interaction's message can no longer be edited, e.g. after a restart)."""

        async def report(text: str, final: bool) -> None:
            if not final:
                return
            channel = await self._dm_channel(int(where["user"]))
            for piece in split_text(text, CONTENT_LIMIT):
                await channel.send(piece)

        return report

    def _view(self, reply: Reply) -> discord.ui.View | None:
        """Buttons of an ordinary reply (language choice, confirmations)."""
        if not reply.buttons:
            return None
        view = discord.ui.View(timeout=600)
        for button in reply.buttons:
            item: discord.ui.Button[discord.ui.View] = discord.ui.Button(
                label=button.label[:80], style=discord.ButtonStyle.secondary
            )
            item.callback = self._button_callback(button.action)  # type: ignore[method-assign]
            view.add_item(item)
        return view

    def _button_callback(self, action: str) -> Any:
        command, _, rest = action.partition(" ")

        async def pressed(interaction: discord.Interaction) -> None:
            await self.on_button(interaction, command, rest)

        return pressed

    def _embed(self, reply: Reply) -> discord.Embed:
        title, _, body = reply.text.partition("\n\n")
        return discord.Embed(
            title=title[:256], description=body[:EMBED_DESCRIPTION_LIMIT], colour=BOARD_COLOUR
        )

    async def _post_board(
        self, interaction: discord.Interaction, invocation: Invocation, reply: Reply
    ) -> None:
        label = reply.buttons[0].label if reply.buttons else "I pledge"
        await self._send(
            interaction, "", ephemeral=False, embed=self._embed(reply), view=BoardView(self, label)
        )
        message = await interaction.original_response()
        ref = f"{message.channel.id}:{message.id}"
        await self.services.storage.set_board("discord", invocation.chat_id, ref)
        self.boards.track(invocation.chat_id, ref, reply)

    async def send_to_channel(self, channel_id: int, text: str) -> int | None:
        """Post a text to a channel outside any interaction, paced; the last message's id."""
        channel = self.client.get_partial_messageable(channel_id)
        last: int | None = None
        for piece in split_text(text, CONTENT_LIMIT):
            # A 5xx may come after Discord created the message: the retry carries the same
            # nonce, which Discord enforces, so it is never posted twice.
            nonce = secrets.token_hex(12)
            for attempt in range(1, SEND_ATTEMPTS + 1):
                await self.pacer.slot(channel_id, group=True)
                try:
                    sent = await channel.send(piece, nonce=nonce)
                    break
                except discord.Forbidden:
                    log.info("discord: not allowed to post in one channel")
                    return None
                except discord.HTTPException as error:
                    # discord.py already waited out 429s a few times; beyond that, and for
                    # Discord's 5xx, hold this channel and try again later.
                    if attempt == SEND_ATTEMPTS or not (error.status == 429 or error.status >= 500):
                        log.error("discord: message not delivered (HTTP %s)", error.status)
                        return None
                    self.pacer.pause(channel_id, 2.0**attempt)
            last = sent.id
        return last

    # -- outbox transport --------------------------------------------------------------

    platform = Platform.DISCORD.value
    # Every send carries a nonce Discord enforces for "the past few minutes": a message going
    # out at a crash is resent (and dropped by Discord if it had arrived) within two.
    resend_within = timedelta(minutes=2)

    async def _dm_channel(self, user_id: int) -> discord.PartialMessageable:
        """A volunteer's private channel; opening one is a request of its own, so the ids
        of the channels already open are remembered (a bounded cache)."""
        channel_id = self._dm_channels.get(user_id)
        if channel_id is None:
            await self.pacer.overall_slot()
            channel_id = (await self.client.create_dm(discord.Object(user_id))).id
            self._dm_channels[user_id] = channel_id
            if len(self._dm_channels) > DM_CACHE:
                self._dm_channels.popitem(last=False)
        else:
            self._dm_channels.move_to_end(user_id)
        return self.client.get_partial_messageable(channel_id, type=discord.ChannelType.private)

    def _outbox_view(self, buttons: tuple[Button, ...]) -> ActionView | None:
        """The buttons of an outbox message. The view is stopped before it is sent, so
        discord.py does not keep one per message: the persistent ActionView registered at
        start-up answers every press by its custom id."""
        if not buttons:
            return None
        view = ActionView(self, buttons)
        view.stop()
        return view

    @property
    def window(self) -> int:
        """Deliveries in flight at once: about one second of sending (the pacer's)."""
        return self.pacer.window

    async def deliver(
        self,
        address: str,
        text: str,
        nonce: str,
        buttons: tuple[Button, ...] = (),
        on_send: OnSend | None = None,
        mention: str | None = None,
    ) -> Outcome:
        """Send one outbox message: to a volunteer privately, or to a community's board
        channel; the nonce lets Discord drop a resend after a crash. `mention`, a role id,
        is pinged at the head of the message in the home server only (an announcement's
        chosen role); nothing else ever pings."""
        _volunteer, community = await self.services.storage.load_context(b"", "discord", address)
        ping = self._role_ping(mention, address) if community is not None else None
        if ping is not None:
            text = f"<@&{mention}>\n{text}"
        pieces = split_text(text, CONTENT_LIMIT)
        view = self._outbox_view(buttons)
        try:
            channel: discord.abc.Messageable
            if community is None:  # a volunteer: a private message
                channel = await self._dm_channel(int(address))
                channel_id = channel.id
            else:
                if not community.board_ref:
                    log.info("discord: a community has no board channel yet; /board sets it")
                    return Outcome.FAILED
                channel_id = int(community.board_ref.partition(":")[0])
                channel = self.client.get_partial_messageable(channel_id)
            for number, piece in enumerate(pieces, start=1):
                if wait := self.pacer.paused_for(channel_id):
                    raise RetryLater(wait)
                recording = number == 1 and on_send is not None
                await self.pacer.slot(channel_id, group=community is not None, recording=recording)
                if recording:
                    await self.pacer.before_send(on_send)
                # One nonce per piece, derived from the delivery: Discord enforces it.
                kwargs: dict[str, Any] = {"nonce": f"{nonce}:{number}"[:25]}
                if view is not None and number == len(pieces):
                    kwargs["view"] = view
                if ping is not None and number == 1:
                    kwargs["allowed_mentions"] = ping
                await channel.send(piece, **kwargs)
            return Outcome.SENT
        except discord.Forbidden:
            if community is None:
                key = self.services.identities.key("discord", address)
                await self.services.storage.set_reminders(key, False, None)
            else:
                await self.services.storage.set_community_subscribed("discord", address, False)
            return Outcome.UNREACHABLE
        except discord.NotFound:
            return Outcome.UNREACHABLE
        except discord.HTTPException as error:
            if error.status == 429:
                self.services.telemetry.rate_limited("discord")
            return Outcome.RETRY if error.status == 429 or error.status >= 500 else Outcome.FAILED

    def _role_ping(self, mention: str | None, address: str) -> discord.AllowedMentions | None:
        """What a community's copy may ping: exactly the chosen role, never @everyone or
        @here, and only in the coalition's home server (the core checked the role there)."""
        home = self.services.settings.discord_home_guild_id
        if mention is None or home is None or address != str(home):
            return None
        if not mention.isdigit() or int(mention) == home:  # @everyone's id is the server's
            return None
        return discord.AllowedMentions(
            everyone=False, users=False, roles=[discord.Object(int(mention))], replied_user=False
        )

    # -- boards -------------------------------------------------------------------------

    async def publish_board(self, guild_id: str, channel_id: int) -> str:
        """Post a community's board in a channel outside any interaction; its reference."""
        reply = await self._render_board(guild_id)
        label = reply.buttons[0].label if reply.buttons else "I pledge"
        await self.pacer.overall_slot()
        channel = self.client.get_partial_messageable(channel_id)
        sent = await channel.send(embed=self._embed(reply), view=BoardView(self, label))
        ref = f"{channel_id}:{sent.id}"
        await self.services.storage.set_board("discord", guild_id, ref)
        self.boards.track(guild_id, ref, reply)
        return ref

    async def _render_board(self, chat_id: str) -> Reply:
        return await render_board(self.services, "discord", chat_id)

    async def _edit_board(self, chat_id: str, ref: str, latest: Latest) -> Reply | None:
        channel_id, _, message_id = ref.partition(":")
        channel = self.client.get_partial_messageable(int(channel_id))
        await self.pacer.overall_slot()  # the board updater already spaces edits per board
        reply = await latest(chat_id)  # the count as of the edit's turn
        if reply is None:
            return None
        label = reply.buttons[0].label if reply.buttons else "I pledge"
        try:
            await channel.get_partial_message(int(message_id)).edit(
                embed=self._embed(reply), view=BoardView(self, label)
            )
            self.services.telemetry.board_edit("discord")
        except discord.HTTPException as error:
            refused = isinstance(error, discord.NotFound) or error.code in REPOST_CODES
            if isinstance(error, discord.Forbidden) and not refused:
                log.info("discord: no longer allowed to post the board in one channel")
                self.boards.drop(chat_id)
                return None
            if not refused:
                raise  # a passing failure: the board updater tries again at the next change
            # Discord refuses to edit this message (deleted, or too old): post a new board.
            sent = await channel.send(embed=self._embed(reply), view=BoardView(self, label))
            new_ref = f"{channel_id}:{sent.id}"
            await self.services.storage.set_board("discord", chat_id, new_ref)
            self.boards.track(chat_id, new_ref, reply)
        return reply

    async def _before(self, invocation: Invocation) -> None:
        """A server's admin setting it up (/board, /subscribe…) makes it a community: give
        it its server's language first, so that its first board reads in it."""
        command = self.services.registry.get(invocation.command)
        if (
            invocation.in_group
            and invocation.is_admin
            and command is not None
            and command.scope is Scope.COMMUNITY
        ):
            await self.adopt_server_language(int(invocation.chat_id), create=True)

    async def _after(self, invocation: Invocation) -> None:
        if invocation.command in COUNT_CHANGING:
            self.services.counts_changed()
        if not invocation.in_group:
            return
        if invocation.command == "language":  # perhaps the community's: the board follows
            self.boards.touch(invocation.chat_id)
        # A pledge may have made this server a community: it takes the server's language.
        await self.adopt_server_language(int(invocation.chat_id))

    # -- a server's language -----------------------------------------------------------

    def _locale_language(self, locale: str | None) -> str | None:
        """The language of a Discord locale ("fr", "en-US"), if the bot speaks it."""
        return self.services.catalogs.match(locale)

    def _settled(self, chat_id: str) -> None:
        self._languages_settled[chat_id] = None
        self._languages_settled.move_to_end(chat_id)
        if len(self._languages_settled) > LANGUAGE_CACHE:
            self._languages_settled.popitem(last=False)

    async def adopt_server_language(self, guild_id: int, *, create: bool = False) -> None:
        """A server's community without a language of its own (none chosen with /language
        … group) takes the server's preferred locale, when the bot speaks it: its board and
        the posts there (announcements, reminders, tally posts) are then in it. With
        `create`, the community is made if it is not there yet."""
        chat_id = str(guild_id)
        if chat_id in self._languages_settled:
            return
        guild = self.client.get_guild(guild_id)
        language = self._locale_language(str(guild.preferred_locale) if guild else None)
        if language is None:
            return
        storage = self.services.storage
        _volunteer, community = await storage.load_context(b"", Platform.DISCORD.value, chat_id)
        if community is None and not create:
            return  # not a community (yet): a pledge or an admin's command makes it one
        self._settled(chat_id)
        if community is not None and community.language is not None:
            return
        await storage.set_community_language(Platform.DISCORD.value, chat_id, language)
        log.info("discord: a server's community now speaks its preferred locale's language")
        self.boards.touch(chat_id)

    async def server_locale_changed(self, guild_id: int, before: str, after: str) -> None:
        """A server changed its preferred locale: its community follows, unless its admins
        chose a language other than the one it had (the old locale's)."""
        chat_id = str(guild_id)
        old, new = self._locale_language(before), self._locale_language(after)
        storage = self.services.storage
        _volunteer, community = await storage.load_context(b"", Platform.DISCORD.value, chat_id)
        if new is None or community is None or community.language not in (None, old):
            return
        if community.language != new:
            await storage.set_community_language(Platform.DISCORD.value, chat_id, new)
            self.boards.touch(chat_id)
        self._settled(chat_id)

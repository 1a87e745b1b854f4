"""Telegram front-end on python-telegram-bot: updates become Invocations, Replies messages.

It translates only. Who may do what, what to answer and in which language is the core's
business; this module decides how an answer travels on Telegram: a toast for a button
press, a private message (and a reaction in the group) for an answer meant for one person,
HTML with every string escaped, long texts split, the board pinned and kept up to date.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

from aiohttp import web
from telegram import (
    BotCommand,
    BotCommandScopeAllChatAdministrators,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReactionTypeEmoji,
    Update,
    User,
)
from telegram.constants import MessageLimit, ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.core import i18n
from bot.core.i18n import Raw, _
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
from bot.delivery.pacing import LatestOnly, Pacer
from bot.delivery.progress import Edit, ProgressReports
from bot.frontends.telegram_http import AiohttpRequest, NotSent, slim_update
from bot.services.container import BOARDS, Services
from bot.services.dispatch import Dispatcher
from bot.services.registry import split_command
from bot.services.render import render_board
from bot.web.server import WebServer

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram"
ALLOWED_UPDATES = ["message", "callback_query"]
# Set while a webhook request is processed: a button answer put here goes back in the response.
_inline_answer: ContextVar[dict[str, Any] | None] = ContextVar("inline_answer", default=None)
GROUP_ANONYMOUS_BOT = 1087968824
ADMIN_CACHE_SECONDS = 60.0
TOAST_LIMIT = 200
COUNT_CHANGING = frozenset({"pledge", "unpledge", "forget", "start", "done"})
SEND_ATTEMPTS = 4
NO_PREVIEW = {"is_disabled": True}  # link_preview_options, as disable_web_page_preview sends it


def toast(text: str) -> str:
    """What fits in a button-press answer: the first paragraph, at most 200 characters."""
    first = text.split("\n\n", 1)[0]
    return first if len(first) <= TOAST_LIMIT else first[: TOAST_LIMIT - 1] + "…"


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    """The reply's buttons as an inline keyboard, one per row."""
    if not reply.buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.action)] for b in reply.buttons]
    )


class InDoubt(Exception):
    """A send timed out after its request left: it may have arrived, so it is not resent."""


def may_have_arrived(error: TimedOut) -> bool:
    """Whether a timed-out request may have reached Telegram: not when it never got a
    connection (pool or connect timeout), yes once it was written (write or read timeout)."""
    return not isinstance(error.__cause__, NotSent)


def coalescible(reply: Reply) -> bool:
    """Whether a group answer may be replaced by a newer one while it waits (a plain public
    answer, such as a tally; not a board or a progress message)."""
    return (
        reply.visibility is Visibility.PUBLIC
        and reply.kind is ReplyKind.ANSWER
        and reply.progress is None
    )


def _seconds(retry_after: int | timedelta) -> float:
    return retry_after.total_seconds() if isinstance(retry_after, timedelta) else float(retry_after)


class TelegramFrontend:
    """One Telegram bot, run by long polling, on the shared command core."""

    def __init__(
        self, services: Services, dispatcher: Dispatcher, web: WebServer | None = None
    ) -> None:
        self.services = services
        self.dispatcher = dispatcher
        self.web = web
        secret = services.settings.telegram_webhook_secret
        self._webhook_secret = secret.get_secret_value() if secret else secrets.token_urlsafe(32)
        self._background: set[asyncio.Future[Any]] = set()
        self.application: Application[Any, Any, Any, Any, Any, Any] | None = None
        self.requests = AiohttpRequest(connection_pool_size=256)  # the bot's, not getUpdates
        self.username = ""
        self._admins: dict[tuple[int, int], tuple[float, bool]] = {}
        settings = services.settings
        self.paid_broadcast = settings.telegram_paid_broadcast
        self.pacer = Pacer(
            1000.0 if self.paid_broadcast else settings.telegram_rate_overall,
            settings.telegram_rate_per_chat,
            settings.telegram_rate_per_group_minute,
        )
        self.boards = BoardUpdater(
            self._render_board, self._edit_board, interval=services.settings.board_interval
        )
        services.count_listeners.append(lambda: self.boards.touch(None))
        self.progress = ProgressReports(services, services.settings.board_interval)
        # Boards and progress messages are edited by the leading process only (`lead`).
        self.boards.leading = self.progress.leading = False
        self.boards.untracked = self._tell_leader_of_boards
        self.group_answers: LatestOnly[Reply] = LatestOnly(self._send_group_answer)

    # -- lifecycle -------------------------------------------------------------------

    def build(self) -> Application[Any, Any, Any, Any, Any, Any]:
        """The python-telegram-bot Application, with our three handlers."""
        settings = self.services.settings
        assert settings.telegram_token is not None
        application = (
            ApplicationBuilder()
            .token(settings.telegram_token.get_secret_value())
            .base_url(settings.telegram_base_url)
            .base_file_url(settings.telegram_base_file_url)
            .request(self.requests)
            .get_updates_request(AiohttpRequest(connection_pool_size=1))
            .concurrent_updates(True)
            .build()
        )
        application.add_handler(MessageHandler(filters.COMMAND, self.on_command))
        application.add_handler(
            MessageHandler(filters.TEXT & ~filters.COMMAND & filters.ChatType.PRIVATE, self.on_text)
        )
        application.add_handler(CallbackQueryHandler(self.on_button))
        application.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, self.on_migrate))
        application.add_error_handler(self.on_error)
        return application

    async def start(self) -> None:
        """Connect, publish the command menus and, with a public URL, take updates by
        webhook (every process may; without one, only the leader polls: see `lead`)."""
        self.application = self.build()
        await self.application.initialize()
        self.username = self.application.bot.username or ""
        await self.publish_commands()
        url = self.services.settings.telegram_webhook_url
        if url:
            if self.web is None:
                raise RuntimeError("webhook mode needs the web server")
            self.web.add_post(WEBHOOK_PATH, self.on_webhook)
            await self.application.bot.set_webhook(
                url,
                secret_token=self._webhook_secret,
                allowed_updates=ALLOWED_UPDATES,
                max_connections=self.services.settings.telegram_webhook_max_connections,
            )
            await self.application.start()
            log.info("telegram: webhook mode as @%s", self.username)
            return
        await self.application.start()

    async def lead(self) -> None:
        """This process leads: edit the boards and progress messages, and take updates by
        long polling when there is no webhook (Telegram allows one poller per bot)."""
        assert self.application is not None
        self.boards.leading = self.progress.leading = True
        await self.follow_boards()
        await self.resume_progress()
        updater = self.application.updater
        polling = not self.services.settings.telegram_webhook_url
        if polling and updater is not None and not updater.running:
            await updater.start_polling(
                poll_interval=0.0, timeout=10, allowed_updates=ALLOWED_UPDATES
            )
            log.info("telegram: polling as @%s", self.username)

    async def follow(self) -> None:
        """Another process leads (or none): stop editing and polling."""
        await self.boards.release()
        await self.progress.release()
        if self.application is not None:
            updater = self.application.updater
            if updater is not None and updater.running:
                await updater.stop()

    def _tell_leader_of_boards(self) -> None:
        if self.services.relay is not None:
            self.services.relay(BOARDS)

    async def resume_progress(self) -> None:
        """Edit every stored unfinished progress message not followed yet (when leading)."""
        await self.progress.resume("telegram", self._editor)

    async def follow_boards(self) -> None:
        """Edit every stored board this process does not edit yet (when leading)."""
        if not self.boards.leading:
            return
        for chat_id, ref in await self.services.storage.boards("telegram"):
            if not self.boards.tracks(chat_id, ref):
                self.boards.track(chat_id, ref, await self._render_board(chat_id))
                self.boards.touch(chat_id)

    async def on_webhook(self, request: web.Request) -> web.Response:
        """One update posted by Telegram. A button press is answered in the HTTP response
        itself (Telegram runs a method returned there), which saves a request per press."""
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not hmac.compare_digest(given.encode(), self._webhook_secret.encode()):
            return web.Response(status=403)
        assert self.application is not None
        try:
            update = Update.de_json(slim_update(await request.json()), self.application.bot)
        except (ValueError, KeyError, TypeError):
            return web.Response(status=400)
        if update.callback_query is None:
            # Answers to messages may wait on a chat's pacing: never hold Telegram's
            # connection (and every other chat's updates behind it) for that.
            self._spawn(self.application.process_update(update))
            return web.Response(status=200)
        slot: dict[str, Any] = {}
        token = _inline_answer.set(slot)
        try:
            await self.application.process_update(update)
        finally:
            _inline_answer.reset(token)
        if slot:
            return web.json_response({"method": "answerCallbackQuery", **slot})
        return web.Response(status=200)

    def _spawn(self, work: Awaitable[Any]) -> None:
        """Run work in the background, keeping a reference until it ends."""
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def stop(self) -> None:
        """Stop polling, finish board edits, disconnect."""
        if self.application is None:
            return
        if self.application.updater is not None and self.application.updater.running:
            await self.application.updater.stop()
        if self.application.running:
            await self.application.stop()
        if self._background:
            await asyncio.wait(self._background, timeout=10)
        await self.group_answers.close()
        await self.boards.close()
        await self.progress.close()
        await self.application.shutdown()

    async def publish_commands(self) -> None:
        """setMyCommands from the registry, per language: volunteers' commands for everyone,
        community commands in groups' admin menus, coalition commands only in the private
        chats of the configured organizers."""
        assert self.application is not None
        bot = self.application.bot
        registry = self.services.registry
        default = self.services.settings.default_language
        organizers = sorted(self.services.settings.organizer_ids("telegram"), key=int)
        for language in (*self.services.catalogs.languages, None):
            with i18n.use(self.services.catalogs.get(language or default)):
                everyone = [BotCommand(n, d) for n, d in registry.menu()]
                admins = [BotCommand(n, d) for n, d in registry.menu(Scope.COMMUNITY)]
                coalition = [BotCommand(n, d) for n, d in registry.menu(Scope.COALITION)]
            code = language or None
            await bot.set_my_commands(everyone, scope=BotCommandScopeDefault(), language_code=code)
            await bot.set_my_commands(
                admins, scope=BotCommandScopeAllChatAdministrators(), language_code=code
            )
            for organizer in organizers:
                try:
                    await bot.set_my_commands(
                        coalition, scope=BotCommandScopeChat(int(organizer)), language_code=code
                    )
                except BadRequest:  # they have not opened a private chat with the bot yet
                    log.info("telegram: an organizer's menu waits until they start the bot")

    # -- updates in --------------------------------------------------------------------

    async def on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A /command in any chat."""
        message, user, chat = update.effective_message, update.effective_user, update.effective_chat
        if message is None or user is None or chat is None or message.text is None:
            return
        command, addressee, rest = split_command(message.text)
        if addressee and addressee.lower() != self.username.lower():
            return  # a command for another bot in the same group
        invocation = await self._invocation(message, user, chat, command, rest)
        replies = await self.dispatcher.handle(invocation)
        if not invocation.in_group:
            await self._deliver(invocation, replies, message=message)
        else:
            # A group's answers wait on its pacing (20 a minute): never in this handler,
            # which would hold one of the application's update slots, and other chats'
            # updates behind it. Answers to the same command coalesce while they wait.
            chat_id = int(invocation.chat_id)
            for reply in replies:
                if coalescible(reply):
                    self.group_answers.post(chat_id, invocation.command, reply)
            others = [reply for reply in replies if not coalescible(reply)]
            if others:
                self._spawn(self._deliver(invocation, others, message=message))
        self._after(invocation)

    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Plain text in a private chat (stop words)."""
        message, user, chat = update.effective_message, update.effective_user, update.effective_chat
        if message is None or user is None or chat is None or message.text is None:
            return
        as_chat = message.sender_chat is not None
        invocation = self._base(
            user, chat, "", message.text, Source.TEXT, admin=False, as_chat=as_chat
        )
        replies = await self.dispatcher.handle(invocation)
        await self._deliver(invocation, replies, message=message)

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A press on one of our inline buttons."""
        query, user = update.callback_query, update.effective_user
        if query is None or user is None:
            return
        chat = query.message.chat if query.message is not None else None
        if chat is None:
            await query.answer()
            return
        command, _, rest = (query.data or "").partition(" ")
        admin = await self._is_admin(user, chat, None, command)
        invocation = self._base(user, chat, command, rest, Source.BUTTON, admin=admin)
        replies = await self.dispatcher.handle(invocation)
        private = [r for r in replies if r.visibility is Visibility.PRIVATE]
        public = [r for r in replies if r.visibility is Visibility.PUBLIC]
        text = toast(private[0].text) if private else None
        slot = _inline_answer.get()
        if slot is not None and not slot:
            slot["callback_query_id"] = query.id
            if text:
                slot["text"] = text
        else:
            await query.answer(text)
        if chat.type == Chat.PRIVATE:
            public += private[1:]
        # A progress message is a message to keep editing, not only a toast.
        public += [r for r in private if r.progress is not None and r not in public]
        if public:  # the press is answered; what goes to the chat may wait on its pacing
            self._spawn(self._deliver(invocation, public))
        self._after(invocation)

    async def on_migrate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A group became a supergroup: move its community, pledges and board to the new id."""
        message = update.effective_message
        if message is None:
            return
        if message.migrate_to_chat_id is not None:
            await self._migrated(message.chat.id, message.migrate_to_chat_id)
        elif message.migrate_from_chat_id is not None:
            await self._migrated(message.migrate_from_chat_id, message.chat.id)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Anything that escaped a handler: log it; the bot keeps running."""
        log.error(
            "telegram: update failed: %s", type(context.error).__name__, exc_info=context.error
        )

    # -- building invocations -----------------------------------------------------------

    def _base(
        self,
        user: User,
        chat: Chat,
        command: str,
        text: str,
        source: Source,
        *,
        admin: bool,
        as_chat: bool = False,
    ) -> Invocation:
        return Invocation(
            platform=Platform.TELEGRAM,
            user_id=str(user.id),
            chat_id=str(chat.id),
            chat_kind=ChatKind.PRIVATE if chat.type == Chat.PRIVATE else ChatKind.GROUP,
            command=command,
            text=text,
            source=source,
            language_hint=None if as_chat else user.language_code,
            # Coalition organizers are the configured ids, nobody else: a group's admins
            # run their own group, never the campaign.
            is_organizer=not as_chat
            and str(user.id) in self.services.settings.organizer_ids("telegram"),
            is_admin=admin,
            as_chat=as_chat,
            dm_address=None if as_chat else str(user.id),
        )

    async def _invocation(
        self, message: Message, user: User, chat: Chat, command: str, text: str
    ) -> Invocation:
        as_chat = message.sender_chat is not None or user.id == GROUP_ANONYMOUS_BOT
        admin = await self._is_admin(user, chat, message, command)
        return self._base(user, chat, command, text, Source.COMMAND, admin=admin, as_chat=as_chat)

    async def _is_admin(
        self, user: User, chat: Chat, message: Message | None, command: str
    ) -> bool:
        """Whether the sender administers this group (anonymous admins included; cached
        briefly), looked up only for the commands where it matters."""
        if chat.type == Chat.PRIVATE or not self.services.registry.checks_admin(command):
            return False
        if message is not None and message.sender_chat is not None:
            # An anonymous administrator speaks as the group itself; a linked channel or
            # another chat speaking here is no admin of it.
            return message.sender_chat.id == chat.id
        if user.id == GROUP_ANONYMOUS_BOT:
            return False
        key = (chat.id, user.id)
        cached = self._admins.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < ADMIN_CACHE_SECONDS:
            return cached[1]
        try:
            member = await chat.get_member(user.id)
            is_admin = member.status in ("creator", "administrator")
        except (BadRequest, Forbidden):
            is_admin = False
        self._admins[key] = (now, is_admin)
        return is_admin

    # -- replies out ----------------------------------------------------------------------

    async def _deliver(
        self, invocation: Invocation, replies: list[Reply], message: Message | None = None
    ) -> None:
        chat_id = int(invocation.chat_id)
        in_group = invocation.chat_kind is ChatKind.GROUP
        reacted = False
        for reply in replies:
            try:
                # Sent on behalf of a chat, there is no person to answer privately.
                if not in_group or reply.visibility is Visibility.PUBLIC or invocation.as_chat:
                    await self._deliver_public(chat_id, reply)
                    continue
                # Not a new group message per volunteer: a reaction there, the answer in private.
                if message is not None and not reacted:
                    reacted = await self._react(message)
                if await self._deliver_private(invocation, reply):
                    continue
            except InDoubt:
                continue  # it may have arrived: never sent twice (the outbox's rule too)
            if invocation.source is Source.COMMAND and message is not None:
                await self._point_to_private_chat(chat_id, reply, message)
                return

    async def _send_group_answer(self, chat_id: int, reply: Reply) -> None:
        """Send one coalesced group answer; a failure is logged, never raised."""
        try:
            await self._deliver_public(chat_id, reply)
        except InDoubt:
            pass
        except Exception:
            log.exception("telegram: a group answer failed")

    async def _deliver_public(self, chat_id: int, reply: Reply) -> None:
        """Send a reply to the chat it answers (a board is then pinned and followed)."""
        sent = await self._send(chat_id, reply)
        if sent is not None and reply.kind is ReplyKind.BOARD:
            await self._new_board(chat_id, sent, reply)
        elif sent is not None:
            self._follow(reply, chat_id, sent)

    async def _deliver_private(self, invocation: Invocation, reply: Reply) -> bool:
        """Send a reply to its reader privately; False if they never opened a private chat."""
        sent = await self._send(int(invocation.user_id), reply, private_chat=True)
        if sent is None:
            return False
        self._follow(reply, int(invocation.user_id), sent)
        return True

    async def _point_to_private_chat(self, chat_id: int, reply: Reply, message: Message) -> None:
        """They never opened a private chat with the bot. The answer is theirs alone: the
        group only gets a fixed pointer to a private chat, never its content."""
        with i18n.use(self.services.catalogs.get(reply.locale)):
            pointer = _(
                "I answer this privately. Open a private chat with me, then ask again: {link}",
                link=Raw(f"https://t.me/{self.username}"),
            )
        with contextlib.suppress(InDoubt):
            await self._send(chat_id, Reply(text=pointer), reply_to=message.message_id)

    def _follow(self, reply: Reply, chat_id: int, sent: Message) -> None:
        """Keep a progress message (an announcement's) up to date by editing it."""
        if reply.progress is None:
            return
        where = {"platform": "telegram", "chat": chat_id, "message": sent.message_id}
        self.progress.follow(reply.progress, reply.locale, self._editor(where), where)

    def _editor(self, where: dict[str, Any]) -> Edit:
        """How to edit the progress message stored as `where` (a chat and a message id)."""
        assert self.application is not None
        bot = self.application.bot

        async def edit(text: str, final: bool) -> None:
            await self._call(
                int(where["chat"]),
                idempotent=True,
                request=lambda target: bot.edit_message_text(
                    html.escape(text, quote=False),
                    chat_id=target,
                    message_id=int(where["message"]),
                    parse_mode=ParseMode.HTML,
                ),
            )

        return edit

    async def _send(
        self,
        chat_id: int,
        reply: Reply,
        *,
        reply_to: int | None = None,
        private_chat: bool = False,
    ) -> Message | None:
        """Send one reply (split when long); the last message sent, or None if undeliverable."""
        assert self.application is not None
        bot = self.application.bot
        # Telegram's limit counts the text after HTML parsing: split first, then escape, so
        # an entity such as &amp; is never cut in two.
        pieces = [
            html.escape(piece, quote=False)
            for piece in split_text(reply.text, MessageLimit.MAX_TEXT_LENGTH)
        ]
        last: Message | None = None
        for index, piece in enumerate(pieces):
            markup = keyboard(reply) if index == len(pieces) - 1 else None
            last = await self._call(
                chat_id,
                lambda target, piece=piece, markup=markup: bot.send_message(
                    target,
                    piece,
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup,
                    reply_to_message_id=reply_to,
                    allow_sending_without_reply=True,
                    disable_web_page_preview=True,
                ),
                private_chat=private_chat,
            )
            if last is None:
                return None
        return last

    async def _call(
        self,
        chat_id: int,
        request: Callable[[int], Awaitable[Any]],
        *,
        private_chat: bool = False,
        idempotent: bool = False,
        first: bool = False,
    ) -> Any:
        """Run one request for a chat: wait out RetryAfter for that chat only, retry network
        errors with backoff, and turn Forbidden / ChatMigrated into what they mean. A send
        that timed out after it left may have arrived: it is never sent again (InDoubt);
        an edit (idempotent) may be. `first`: ahead of the chat's waiting posts (a board)."""
        delay = 0.5
        for attempt in range(1, SEND_ATTEMPTS + 1):
            await self.pacer.slot(chat_id, group=chat_id < 0, first=first)
            try:
                await self.pacer.depart(chat_id, group=chat_id < 0)
                return await request(chat_id)
            except RetryAfter as error:
                self.services.telemetry.rate_limited("telegram")
                wait = _seconds(error.retry_after)
                log.warning("telegram: flood control for one chat, holding it %.0f s", wait)
                self.pacer.pause(chat_id, wait)
            except Forbidden:
                await self._unreachable(chat_id, private_chat)
                return None
            except ChatMigrated as error:
                await self._migrated(chat_id, error.new_chat_id)
                return await self._call(
                    error.new_chat_id, request, idempotent=idempotent, first=first
                )
            except BadRequest as error:
                log.warning("telegram: request refused: %s", error.message)
                return None
            except TimedOut as error:
                if not idempotent and may_have_arrived(error):
                    log.warning("telegram: a send timed out; it may have arrived: not resent")
                    raise InDoubt from None
                if attempt == SEND_ATTEMPTS:
                    log.error("telegram: giving up after %d attempts: timed out", attempt)
                    return None
                await asyncio.sleep(delay)
                delay *= 2
            except NetworkError as error:
                if attempt == SEND_ATTEMPTS:
                    log.error("telegram: giving up after %d attempts: %s", attempt, error)
                    return None
                await asyncio.sleep(delay)
                delay *= 2
        return None

    async def _react(self, message: Message) -> bool:
        try:
            await message.set_reaction(ReactionTypeEmoji("👍"))
            return True
        except (BadRequest, Forbidden, NetworkError):
            return False

    async def _unreachable(self, chat_id: int, private_chat: bool) -> None:
        storage = self.services.storage
        if private_chat or chat_id > 0:
            key = self.services.identities.key("telegram", str(chat_id))
            await storage.set_reminders(key, False, None)
            log.info("telegram: a volunteer blocked the bot; their reminders are off")
        else:
            await storage.set_community_subscribed("telegram", str(chat_id), False)
            self.boards.drop(str(chat_id))
            log.info("telegram: the bot was removed from a group; it is unsubscribed")

    async def _migrated(self, old_id: int, new_id: int) -> None:
        moved = await self.services.storage.move_community("telegram", str(old_id), str(new_id))
        self.boards.moved(str(old_id), str(new_id))
        log.info("telegram: a group became a supergroup (moved: %s)", moved)

    # -- outbox transport ----------------------------------------------------------------------

    platform = Platform.TELEGRAM.value
    resend_within = None  # Telegram cannot deduplicate: a message going out at a crash is unknown

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
    ) -> Outcome:
        """Send one outbox message to a chat, paced; how it went. A chat held by a 429
        gives its turn back (RetryLater) instead of holding a place in the window; once a
        request may have gone out, the message is never sent again from the start."""
        assert self.application is not None
        bot = self.application.bot
        chat_id = int(address)
        pieces = split_text(text, MessageLimit.MAX_TEXT_LENGTH)
        for number, piece in enumerate(pieces, start=1):
            first = number == 1
            for attempt in range(1, SEND_ATTEMPTS + 1):
                if wait := self.pacer.paused_for(chat_id):
                    if first:
                        raise RetryLater(wait)
                    await asyncio.sleep(wait)  # part of it is out: finish it here
                recording = first and on_send is not None
                await self.pacer.slot(chat_id, group=chat_id < 0, recording=recording)
                if recording:
                    await self.pacer.before_send(on_send)
                await self.pacer.depart(chat_id, group=chat_id < 0)
                try:
                    # The answer (a Message) is not read: no PTB object is built from it.
                    await self.requests.post_form(
                        bot.base_url,
                        "sendMessage",
                        {
                            "chat_id": chat_id,
                            "text": html.escape(piece, quote=False),
                            "parse_mode": ParseMode.HTML,
                            "link_preview_options": NO_PREVIEW,
                            "reply_markup": keyboard(Reply(piece, buttons))
                            if number == len(pieces)
                            else None,
                            # Paid broadcast (opt-in): up to 1000 messages/s, charged in Stars.
                            "allow_paid_broadcast": True if self.paid_broadcast else None,
                        },
                    )
                    break
                except RetryAfter as error:
                    self.services.telemetry.rate_limited("telegram")
                    seconds = _seconds(error.retry_after)
                    self.pacer.pause(chat_id, seconds)
                    if first:
                        raise RetryLater(seconds) from None
                except Forbidden:
                    await self._unreachable(chat_id, chat_id > 0)
                    return Outcome.UNREACHABLE
                except ChatMigrated as error:
                    await self._migrated(chat_id, error.new_chat_id)
                    return Outcome.FAILED  # the next broadcast goes to the new id
                except BadRequest as error:
                    log.warning("telegram: outbox message refused: %s", error.message)
                    return Outcome.FAILED
                except TimedOut as error:
                    if first and not may_have_arrived(error):
                        return Outcome.RETRY  # it never left: the outbox backs off
                    # The request left and no answer came: it may have arrived. Telegram
                    # cannot deduplicate, so it is not sent again.
                    return Outcome.UNKNOWN
                except NetworkError:
                    if first:
                        return Outcome.RETRY  # nothing went out: the outbox backs off
                    await asyncio.sleep(2.0**attempt)
            else:
                return Outcome.FAILED  # a later piece would not go: the rest is lost
        return Outcome.SENT

    # -- boards -------------------------------------------------------------------------------

    async def _new_board(self, chat_id: int, sent: Message, reply: Reply) -> None:
        ref = str(sent.message_id)
        await self.services.storage.set_board("telegram", str(chat_id), ref)
        self.boards.track(str(chat_id), ref, reply)
        try:
            await sent.pin(disable_notification=True)
        except (BadRequest, Forbidden):
            log.info("telegram: not allowed to pin the board in one group")

    async def _render_board(self, chat_id: str) -> Reply:
        return await render_board(self.services, "telegram", chat_id)

    async def _edit_board(self, chat_id: str, ref: str, latest: Latest) -> Reply | None:
        assert self.application is not None
        bot = self.application.bot
        shown: list[Reply | None] = [None]

        async def edit(target: int) -> object:
            # The group's turn has come: only now read the count, so the board is current.
            reply = shown[0] = await latest(chat_id)
            if reply is None:
                return True  # it shows that already
            return await bot.edit_message_text(
                html.escape(reply.text, quote=False),
                chat_id=target,
                message_id=int(ref),
                parse_mode=ParseMode.HTML,
                reply_markup=keyboard(reply),
            )

        if await self._call(int(chat_id), idempotent=True, first=True, request=edit) is None:
            raise RuntimeError("Telegram did not take the board edit")
        if shown[0] is not None:
            self.services.telemetry.board_edit("telegram")
        return shown[0]

    def _after(self, invocation: Invocation) -> None:
        if invocation.command in COUNT_CHANGING:
            self.services.counts_changed()  # a withdrawal counts wherever the pledge was made

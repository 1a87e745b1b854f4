"""The command core: one Invocation in, replies out, the same for every front-end."""

from __future__ import annotations

import logging
from time import perf_counter

from bot.core import i18n
from bot.core.i18n import Raw, _
from bot.core.ratelimit import Verdict
from bot.core.text import echo
from bot.core.types import ChatKind, Invocation, Reply, Scope, Source, evolve, private
from bot.services.container import Services
from bot.services.registry import Command, UsageError, fold, parse_args
from storage.base import Community, StorageError, Volunteer

log = logging.getLogger(__name__)

# Words that, sent alone in a private chat, turn reminders off.
STOP_WORDS = frozenset(fold(w) for w in ("stop", "arrêt", "arret", "stopp", "توقف", "إيقاف"))

# How an invocation ended, as counted (Services.telemetry): the handler ran and answered;
# it did not run (unknown command, wrong arguments, no right to it); it raised; the flood
# limit dropped or warned; the storage could not be read or written.
ANSWERED, REFUSED, FAILED, FLOODED, STORAGE = (
    "answered",
    "refused",
    "failed",
    "flood_limited",
    "storage_failing",
)
Answer = tuple[str, list[Reply]]  # (outcome, replies)


def resolve_locale(
    volunteer: Volunteer | None,
    hint: str | None,
    community: Community | None,
    default: str,
    languages: tuple[str, ...],
) -> str:
    """The volunteer's choice, the platform's hint, the community's language, the default:
    the first that is one of `languages` (a choice whose catalog was removed is skipped)."""
    if volunteer is not None and volunteer.language in languages:
        return volunteer.language
    hinted = i18n.normalize(hint, languages)
    if hinted:
        return hinted
    if community is not None and community.language in languages:
        return community.language
    return default if default in languages else i18n.SOURCE_LANGUAGE


def shown(command: Command, args: dict[str, str]) -> str:
    """The command with the choices that need a scope, as typed: `/campaign window`."""
    words = ["/" + command.name]
    for arg in command.args:
        chosen = args.get(arg.name)
        if any(c.value == chosen and c.scope is not None for c in arg.choices):
            words.append(str(chosen))
    return " ".join(words)


def refusal(invocation: Invocation, scope: Scope, command: str) -> list[Reply]:
    """The localized answer for someone who may not run a command of that scope here, which
    says who may; nothing when they may."""
    if invocation.may(scope):
        return []
    if scope is Scope.COALITION:
        return private(
            _(
                "Sorry, only the coalition's organizers can use {command}: it acts on the "
                "whole campaign. Being an admin of a group or a server is not enough.",
                command=Raw(command),
            )
        )
    if not invocation.in_group:
        return private(
            _(
                "{command} works only in a community group, not in a private chat.",
                command=Raw(command),
            )
        )
    return private(
        _(
            "Sorry, only this community's admins can use {command} here.",
            command=Raw(command),
        )
    )


class Dispatcher:
    """Resolves who and which language, checks limits and rights, and calls the handler."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def handle(self, invocation: Invocation) -> list[Reply]:
        """Answer one invocation; never raises for anything a user can send."""
        started = perf_counter()
        outcome, replies = await self._answer(invocation)
        command = self.services.registry.get(invocation.command)  # a label: never raw text
        if command is not None:
            name = command.name
        else:
            name = "text" if invocation.source is Source.TEXT else "unknown"
        self.services.telemetry.command(
            name, invocation.platform, outcome, perf_counter() - started
        )
        return replies

    async def _answer(self, invocation: Invocation) -> Answer:
        """The replies to one invocation, and how it ended (an outcome above)."""
        services = self.services
        # A message sent on behalf of a chat is nobody's: it gets the chat's own flood bucket
        # and no volunteer, so a pledge or a /forget can never land on a shared identity.
        who = f"chat:{invocation.chat_id}" if invocation.as_chat else invocation.user_id
        key = services.identities.key(invocation.platform, who)
        verdict = await services.flood.check(key)
        if verdict is Verdict.QUIET:
            log.debug("flood: dropped a %s on %s", invocation.source, invocation.platform)
            return FLOODED, []
        chat = invocation.chat_id if invocation.chat_kind is ChatKind.GROUP else None
        try:
            volunteer, community = await services.storage.load_context(
                key, invocation.platform, chat
            )
        except StorageError as error:  # nothing to answer in but the platform's hint
            log.error(
                "command /%s: the storage could not be read: %s", echo(invocation.command), error
            )
            with i18n.use(
                services.catalogs.get(
                    services.catalogs.match(invocation.language_hint)
                    or services.settings.default_language
                )
            ):
                return STORAGE, private(
                    _(
                        "I could not save that: the bot's storage is failing. Please try "
                        "again later."
                    )
                )
        locale = resolve_locale(
            volunteer,
            invocation.language_hint,
            community,
            services.settings.default_language,
            services.catalogs.languages,
        )
        with i18n.use(services.catalogs.get(locale)):
            if verdict is Verdict.WARN:
                return FLOODED, private(
                    _(
                        "You are sending commands too quickly. Please wait a few seconds, "
                        "then try again."
                    )
                )
            # Added to the invocation with its parsed arguments, in one copy (_route).
            context = {
                "locale": locale,
                # A linked account acts as its person: one pledge, one set of settings.
                "volunteer_key": key if volunteer is None else volunteer.key,
                "account_key": key,
                "volunteer": volunteer,
                "community": community,
            }
            try:
                outcome, replies = await self._route(invocation, context)
                return outcome, [evolve(reply, locale=locale) for reply in replies]
            except StorageError as error:  # it was not saved: never say nothing was lost
                log.error("command /%s failed: %s", echo(invocation.command), error)
                return STORAGE, private(
                    _(
                        "I could not save that: the bot's storage is failing. Please try "
                        "again later."
                    )
                )
            except Exception:
                log.exception(
                    "command /%s failed (%s, %s chat, via %s)",
                    echo(invocation.command),
                    invocation.platform,
                    invocation.chat_kind,
                    invocation.source,
                )
                return FAILED, private(
                    _(
                        "Something went wrong on our side. Nothing you sent was lost; "
                        "please try again in a moment."
                    )
                )

    async def _route(self, invocation: Invocation, context: dict[str, object]) -> Answer:
        """Find the command, check rights and arguments, and call its handler with the
        invocation completed by `context` (locale, volunteer, community) and the args."""
        services = self.services
        if invocation.source is Source.TEXT:
            return ANSWERED, await self._text(evolve(invocation, **context))
        command = services.registry.get(invocation.command)
        if command is None:
            return REFUSED, private(
                _(
                    "I don't know the command {command}. Send /help to see what I can do.",
                    command=Raw("/" + echo(invocation.command)),
                )
            )
        refused = refusal(invocation, command.scope, "/" + command.name)
        if refused:
            return REFUSED, refused
        try:
            args = parse_args(command, invocation.text)
        except UsageError as error:
            usage = Raw(error.command.usage())
            if error.value is None:
                return REFUSED, private(_("Usage: {usage}", usage=usage))
            return REFUSED, private(
                _(
                    "I did not understand “{value}”. Usage: {usage}",
                    value=echo(error.value),
                    usage=usage,
                )
            )
        needed = command.required(args)
        if needed is not command.scope:
            refused = refusal(invocation, needed, shown(command, args))
            if refused:
                return REFUSED, refused
        if invocation.as_chat and needed is Scope.VOLUNTEER and not command.public:
            return REFUSED, private(
                _(
                    "You are posting on behalf of a chat. Send {command} as yourself: a pledge "
                    "and its data belong to a person, not to a chat.",
                    command=Raw("/" + command.name),
                )
            )
        return ANSWERED, await command.handler(evolve(invocation, args=args, **context), services)

    async def _text(self, invocation: Invocation) -> list[Reply]:
        """Plain text: stop words in private chats; elsewhere, chatter that is not for us."""
        if invocation.in_group:
            return []
        if fold(invocation.text) in STOP_WORDS:
            command = self.services.registry.get("reminders")
            if command is not None:
                stop = evolve(invocation, command="reminders", args={"state": "off"})
                return await command.handler(stop, self.services)
        return private(_("I answer commands. Send /help to see them."))

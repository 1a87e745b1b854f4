"""/webpage: a community's own web page with its pledge count, made only when one of its
admins asks, at an unguessable address; taken down (the address dies) on request."""

from __future__ import annotations

import logging
import secrets

from bot.core.i18n import LRI, N_, PDI, Raw, _, ngettext
from bot.core.types import Invocation, Reply, Scope, private
from bot.services.container import Services
from bot.services.registry import Command
from bot.services.render import SMALL_COMMUNITY, paragraphs
from handlers.reminders import STATE

log = logging.getLogger(__name__)

TOKEN_BYTES = 18  # 144 random bits: 24 characters of the address nobody can guess


def page_address(services: Services, token: str) -> str | None:
    """Where a community's page is read (None: this bot publishes no pages)."""
    if services.web_address is None:
        return None
    return f"{services.web_address}c/{token}/"


def _shown(address: str) -> Raw:
    """An address kept whole and left to right inside any sentence (Arabic too)."""
    return Raw(f"{LRI}{address}{PDI}")


async def webpage(invocation: Invocation, services: Services) -> list[Reply]:
    """Give this community a web page with its pledge count: on or off (community admins)."""
    state = invocation.args.get("state")
    community = invocation.community
    token = community.web_page if community is not None else None
    if services.web_address is None:
        return private(
            _(
                "This bot has no public web address, so it cannot make web pages. The "
                "coalition's organizers can give it one."
            )
        )
    if state is None:
        if token is None:
            return private(
                _(
                    "This community has no web page. To make one, send {command}.",
                    command=Raw("/webpage on"),
                )
            )
        return private(_ready(services, token))
    if state == "off":
        if token is None:
            return private(_("This community has no web page."))
        await services.storage.set_web_page(invocation.platform, invocation.chat_id, None)
        log.info("a %s community took its web page down", invocation.platform)
        return private(_("This community's web page is taken down: its address no longer works."))
    if token is None:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        await services.storage.set_web_page(invocation.platform, invocation.chat_id, token)
        log.info("a %s community made its web page", invocation.platform)
    return private(_ready(services, token))


def _ready(services: Services, token: str) -> str:
    address = page_address(services, token)
    assert address is not None
    return paragraphs(
        _("This community's web page: {address}", address=_shown(address)),
        ngettext(
            "It shows how many pledged in this community, next to the coalition's count: "
            "counts only, never names, and only \u201cfewer than {count}\u201d while this "
            "community has fewer than {count} pledge. Share the address where you like.",
            "It shows how many pledged in this community, next to the coalition's count: "
            "counts only, never names, and only \u201cfewer than {count}\u201d while this "
            "community has fewer than {count} pledges. Share the address where you like.",
            SMALL_COMMUNITY,
        ),
        _(
            "To take it down, send {off}. Its address then stops working; a page made again "
            "later gets a new one.",
            off=Raw("/webpage off"),
        ),
    )


COMMANDS = (
    Command(
        "webpage",
        N_("A web page with this community's pledge count: on or off (community admins)"),
        webpage,
        args=(STATE,),
        scope=Scope.COMMUNITY,
    ),
)

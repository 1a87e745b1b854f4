"""/pledge, /unpledge and /mypledge."""

from __future__ import annotations

from bot.core import i18n
from bot.core.i18n import N_, Raw, _
from bot.core.types import Invocation, Reply, private
from bot.services.campaign import checkin_window, duration, load_ladder
from bot.services.container import Services
from bot.services.registry import Arg, Choice, Command
from bot.services.render import paragraphs, window
from handlers.campaign import moment_text
from handlers.common import accounts, long_date, post_message, reader_zone
from storage.base import PledgeStatus

PLATFORM = Arg(
    "platform",
    label=N_("Which accounts you will freeze"),
    choices=(
        Choice("both", ("all", "tous", "les deux", "deux", "كلاهما", "الاثنين", "الكل")),
        Choice("instagram", ("insta", "ig", "إنستاجرام", "انستاجرام", "انستغرام", "إنستغرام")),
        Choice("facebook", ("fb", "فيسبوك", "فيس بوك")),
    ),
)


def is_milestone(number: int, goal: int) -> bool:
    """100, 1,000, 10,000 … pledges, and the goal."""
    return number == goal or (number >= 100 and str(number).rstrip("0") == "1")


async def pledge(invocation: Invocation, services: Services) -> list[Reply]:
    """Pledge to freeze your Instagram and Facebook accounts."""
    choice = invocation.args.get("platform")  # none given: keep what they pledged before
    chat = invocation.chat_id if invocation.in_group else None
    result = await services.storage.pledge(
        services.campaign.id, invocation.volunteer_key, invocation.platform, chat, choice
    )
    total = result.total
    if total is not None and is_milestone(total, services.campaign.goal):
        # The campaign's real count reached it (a volunteer number only grows, withdrawals
        # or not). Posted once to every subscribed community: the key, one per campaign and
        # milestone, makes any later crossing of the same count a no-op.
        made = await services.storage.create_broadcast(
            services.campaign.id,
            f"milestone:{services.campaign.slug}:{total}",
            "milestone",
            str(total),
            services.settings.default_language,
            volunteers=False,
            platforms=services.platforms,
        )
        if made is not None:
            services.broadcast_created()
    label = accounts(result.choice)
    if result.status is PledgeStatus.ALREADY:
        return private(
            _(
                "You have already pledged ({accounts}); you are volunteer number {number}. "
                "Nothing changed.",
                accounts=label,
                number=result.number,
            )
        )
    if result.status is PledgeStatus.UPDATED:
        return private(
            _(
                "Your pledge now covers: {accounts}. You are still volunteer number {number}.",
                accounts=label,
                number=result.number,
            )
        )
    reminders = invocation.volunteer is not None and invocation.volunteer.reminders
    zone = reader_zone(invocation, services)
    campaign = services.campaign
    # Every new pledge in one language, zone and platform ends with the same paragraphs.
    after = i18n.current().built(
        ("pledge", zone, invocation.platform, reminders, campaign.start, campaign.end),
        lambda: paragraphs(
            window(services, zone, invocation.platform),
            post_message(services),
            ""
            if reminders
            else _(
                "Want a reminder before the freeze? Send {command}.",
                command=Raw("/reminders on"),
            ),
        ),
    )
    return private(
        paragraphs(
            _(
                "Thank you! Your pledge is recorded: you will freeze your accounts "
                "({accounts}) for {length}. You are volunteer number {number}.",
                accounts=label,
                length=Raw(duration(services.campaign.length)),
                number=result.number,
            ),
            after,
        )
    )


async def done(invocation: Invocation, services: Services) -> list[Reply]:
    """Say you froze your accounts: from the freeze start until the check-in closes."""
    campaign = services.campaign
    if campaign.start is None or campaign.end is None:
        return private(
            _(
                "You can check in once the freeze starts; the organizers have not announced "
                "its dates yet."
            )
        )
    now = services.clock()
    zone = reader_zone(invocation, services)
    if now < campaign.start:
        return private(
            _(
                "Not yet: the freeze starts on {start}. Once you have frozen your accounts, "
                "send {command}.",
                start=moment_text(campaign.start, zone, invocation.platform),
                command=Raw("/done"),
            )
        )
    _opens, closes = checkin_window(campaign, await load_ladder(services.storage, campaign))
    if now >= closes:
        return private(
            _(
                "The check-in closed on {moment}: it is too late to be counted as done. Thank "
                "you for taking part!",
                moment=moment_text(closes, zone, invocation.platform),
            )
        )
    recorded = await services.storage.mark_done(services.campaign.id, invocation.volunteer_key)
    if recorded is None:
        return private(
            _(
                "There is no pledge of yours to check in. Send {command} first.",
                command=Raw("/pledge"),
            )
        )
    if not recorded:
        return private(_("You already told us you froze your accounts. Thank you!"))
    return private(_("Thank you for freezing your accounts! You are counted as done."))


async def unpledge(invocation: Invocation, services: Services) -> list[Reply]:
    """Withdraw your pledge."""
    withdrawn = await services.storage.unpledge(services.campaign.id, invocation.volunteer_key)
    if not withdrawn:
        return private(_("You have no pledge to withdraw."))
    return private(
        _(
            "Your pledge is withdrawn. You can pledge again at any time with {command}.",
            command=Raw("/pledge"),
        )
    )


async def mypledge(invocation: Invocation, services: Services) -> list[Reply]:
    """Show your pledge."""
    found = await services.storage.get_pledge(services.campaign.id, invocation.volunteer_key)
    if found is None:
        return private(
            _("You have not pledged yet. Send {command} to pledge.", command=Raw("/pledge"))
        )
    return private(
        paragraphs(
            _(
                "Your pledge: {accounts}. You are volunteer number {number}, since {date}.",
                accounts=accounts(found.choice),
                number=found.number,
                date=long_date(found.created_at, invocation, services),
            ),
            window(services, reader_zone(invocation, services), invocation.platform),
        )
    )


COMMANDS = (
    Command(
        "pledge",
        N_("Pledge to freeze your Instagram and Facebook accounts"),
        pledge,
        args=(PLATFORM,),
    ),
    Command("unpledge", N_("Withdraw your pledge"), unpledge),
    Command("done", N_("Say you froze your accounts"), done),
    Command("mypledge", N_("Show your pledge"), mypledge),
)

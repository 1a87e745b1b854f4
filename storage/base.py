"""The storage contract every backend implements (SQLite now, PostgreSQL later)."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class StorageError(Exception):
    """The storage itself is failing (disk full, read-only file, I/O error, closed): the
    operation did not happen, nothing of it was saved. The message names the failure, never
    the data."""


class NotWiped(Exception):
    """An erasure is saved (the rows are gone), but the old copies of what it erased could
    not yet be cut from the storage files (something held them, or the disk failed). The
    storage finishes it at its next erasure, at shutdown, or at the latest at its next start."""


@dataclass(frozen=True, slots=True)
class Volunteer:
    """What is stored about one volunteer: no name, no handle, no message text."""

    key: bytes
    language: str | None
    timezone: str | None
    reminders: bool
    dm_address: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Community:
    """A group or server channel where the bot is used."""

    id: int
    platform: str
    chat_id: str
    language: str | None
    subscribed: bool
    board_ref: str | None
    tally_posts: bool = False  # a periodic tally post, turned on by an organizer
    web_page: str | None = None  # the unguessable part of its web page's address, if any
    tally_hour: int | None = None  # its tally posts' hour (campaign's zone); None: default


class PledgeStatus(StrEnum):
    """What a pledge request did."""

    NEW = "new"
    ALREADY = "already"
    UPDATED = "updated"


@dataclass(frozen=True, slots=True)
class PledgeResult:
    """The outcome of a pledge request."""

    status: PledgeStatus
    number: int
    choice: str
    # A new pledge: the campaign's current pledges just after it (withdrawals deducted), read
    # in the same transaction. None when the request changed no count.
    total: int | None = None


@dataclass(frozen=True, slots=True)
class Pledge:
    """A volunteer's pledge in one campaign."""

    choice: str
    number: int
    created_at: datetime
    communities: int


@dataclass(frozen=True, slots=True)
class Tally:
    """Pledge counts: in one community (None outside a community) and overall."""

    community: int | None
    total: int
    done: int = 0  # of the total, how many said they froze their accounts


@dataclass(frozen=True, slots=True)
class Broadcast:
    """A message for many recipients, created once per idempotency key."""

    id: int
    key: str
    kind: str
    subject: str
    recipients: int  # added so far: a large broadcast's rest is added in the background


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message of a broadcast for one recipient, in the recipient's language."""

    id: int
    broadcast_id: int
    kind: str
    subject: str
    platform: str
    address: str
    language: str
    attempts: int
    personal: bool  # to one volunteer (a private message), not to a community


@dataclass(frozen=True, slots=True)
class Finished:
    """How one delivery attempt ended, as the sender records it."""

    id: int
    state: str  # sent, failed, unreachable, or pending (to try again)
    not_before: datetime | None = None  # pending: not claimed again before this moment
    counted: bool = True  # False: a rate-limit wait, which does not use up an attempt


@dataclass(frozen=True, slots=True)
class VolunteerData:
    """Everything stored about one volunteer, for /mydata."""

    volunteer: Volunteer | None
    pledge: Pledge | None
    platforms: tuple[str, ...] = ()  # the platforms of their linked accounts (none: not linked)


class LinkStatus(StrEnum):
    """How sending a /link code ended."""

    LINKED = "linked"
    ALREADY = "already"  # the two accounts were one volunteer already
    WRONG = "wrong"  # no such code
    EXPIRED = "expired"
    USED = "used"
    SAME_PLATFORM = "same_platform"  # the code was made on the platform it was sent from
    THROTTLED = "throttled"  # too many wrong codes lately


@dataclass(frozen=True, slots=True)
class LinkResult:
    """What linking did: the person's platforms after it, the pledge number kept."""

    status: LinkStatus
    platforms: tuple[str, ...] = ()
    number: int | None = None  # the pledge kept in the campaign (None: no pledge)
    wait: int = 0  # THROTTLED: seconds until another code may be tried


class Storage(abc.ABC):
    """Persistence for volunteers, communities, pledges and counters."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and apply pending migrations."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish pending work and disconnect."""

    # -- several processes on one database ---------------------------------------------
    # The platforms' limits are per bot: one process at a time (the leader) schedules,
    # sends and edits boards. A SQLite file has one process, which always leads.

    async def try_lead(self) -> bool:
        """Become the leader if no process is; whether this process leads now."""
        return True

    async def lead_lost(self) -> None:
        """Return once this process may no longer lead (never, with one process)."""
        await asyncio.Event().wait()

    async def take_command_token(self, key: bytes, rate: int, period: float) -> bool | None:
        """Take one of a volunteer's `rate` commands per `period` seconds from a bucket every
        process shares: whether one was left. None: one process, whose own bucket is the
        limit (always None for a backend that says so once)."""
        return None

    async def publish(self, topic: str) -> None:
        """Tell the other processes on this database that `topic` changed (none here)."""
        return None

    async def subscribe(self, callback: Callable[[str], None]) -> None:
        """Call `callback(topic)` for each topic another process publishes (none here)."""
        return None

    @abc.abstractmethod
    async def ensure_campaign(self, slug: str) -> int:
        """Return the id of the campaign named slug, creating it when new."""

    @abc.abstractmethod
    async def load_context(
        self, key: bytes, platform: str, chat_id: str | None
    ) -> tuple[Volunteer | None, Community | None]:
        """Read the volunteer and the community of one invocation in one go."""

    @abc.abstractmethod
    async def pledge(
        self, campaign_id: int, key: bytes, platform: str, chat_id: str | None, choice: str | None
    ) -> PledgeResult:
        """Record a pledge (idempotent); counters change in the same transaction. A choice of
        None keeps an existing pledge's accounts, and means both for a new one."""

    @abc.abstractmethod
    async def mark_done(self, campaign_id: int, key: bytes) -> bool | None:
        """Record that a volunteer froze their accounts: True if new, False if already
        recorded, None without a pledge."""

    @abc.abstractmethod
    async def unpledge(self, campaign_id: int, key: bytes) -> bool:
        """Withdraw a pledge; False when there was none."""

    @abc.abstractmethod
    async def get_pledge(self, campaign_id: int, key: bytes) -> Pledge | None:
        """The volunteer's pledge in the campaign, if any."""

    @abc.abstractmethod
    async def tally(self, campaign_id: int, platform: str, chat_id: str | None) -> Tally:
        """Counts for one community and overall, read from counters (never a scan)."""

    @abc.abstractmethod
    async def set_language(self, key: bytes, language: str | None) -> None:
        """Store the volunteer's language (None: follow the platform)."""

    @abc.abstractmethod
    async def set_timezone(self, key: bytes, timezone: str) -> None:
        """Store the volunteer's time zone."""

    @abc.abstractmethod
    async def set_reminders(
        self, key: bytes, enabled: bool, dm_address: str | None, platform: str | None = None
    ) -> None:
        """Opt in (keeping the platform and address to write to) or out: then the address
        leaves every table (queued messages dropped, sent ones keep no address) and the
        files; NotWiped if the rows changed but old copies remain in the files for now."""

    @abc.abstractmethod
    async def set_community_language(self, platform: str, chat_id: str, language: str) -> None:
        """Store a community's language."""

    @abc.abstractmethod
    async def set_community_subscribed(self, platform: str, chat_id: str, subscribed: bool) -> None:
        """Subscribe a community to announcements and reminders, or not."""

    @abc.abstractmethod
    async def set_web_page(self, platform: str, chat_id: str, token: str | None) -> None:
        """Give a community its web page at `token` (None: take it down)."""

    @abc.abstractmethod
    async def web_page_tally(self, campaign_id: int, token: str) -> Tally | None:
        """The counts a community's web page shows (None: no page has this token)."""

    @abc.abstractmethod
    async def set_board(self, platform: str, chat_id: str, board_ref: str | None) -> None:
        """Remember the platform reference of a community's board message."""

    @abc.abstractmethod
    async def boards(self, platform: str) -> list[tuple[str, str]]:
        """(chat id, board reference) of every community of a platform that has a board."""

    @abc.abstractmethod
    async def move_community(self, platform: str, old_chat_id: str, new_chat_id: str) -> bool:
        """Give a community a new chat id (a migrated group), keeping its pledges and board."""

    @abc.abstractmethod
    async def add_link_code(
        self, key: bytes, platform: str, code: bytes, expires_at: datetime
    ) -> bool:
        """Keep a one-time /link code (its keyed hash) for an account, replacing the one it
        had; False if another account's live code has the same hash (draw another)."""

    @abc.abstractmethod
    async def redeem_link_code(
        self,
        campaign_id: int,
        key: bytes,
        platform: str,
        code: bytes,
        now: datetime,
        attempts: int,
        window: timedelta,
    ) -> LinkResult:
        """Join the account `key` to the one that made `code`: one volunteer from now on,
        keeping the earlier pledge, counters exact. At most `attempts` failed codes per
        account per `window`."""

    @abc.abstractmethod
    async def unlink(self, key: bytes) -> str | None:
        """Split a person's linked accounts again; the platform of the account that keeps
        the volunteer (pledge, settings), None if `key` was not linked."""

    @abc.abstractmethod
    async def forget(self, key: bytes) -> bool:
        """Delete everything about a volunteer, leaving no copy in the files; False if none.
        StorageError: nothing was erased; NotWiped: erased, old copies not yet cut."""

    @abc.abstractmethod
    async def export(self, campaign_id: int, key: bytes) -> VolunteerData:
        """Everything stored about a volunteer."""

    # -- outbox ----------------------------------------------------------------------------

    @abc.abstractmethod
    async def set_window(
        self, campaign_id: int, start: datetime, end: datetime, rungs: dict[str, datetime]
    ) -> None:
        """Store the freeze window an organizer set (aware moments) and the ladder that goes
        with it, in one transaction."""

    @abc.abstractmethod
    async def window(self, campaign_id: int) -> tuple[datetime, datetime] | None:
        """The freeze window an organizer set, if any."""

    @abc.abstractmethod
    async def set_tally_posts(
        self, platform: str, chat_id: str, enabled: bool, hour: int | None = None
    ) -> None:
        """Turn a community's periodic tally post on (at `hour`, None: the default slots)
        or off."""

    @abc.abstractmethod
    async def set_schedule(self, campaign_id: int, rungs: dict[str, datetime]) -> None:
        """Replace the campaign's reminder ladder (rung name -> moment, aware)."""

    @abc.abstractmethod
    async def schedule(self, campaign_id: int) -> dict[str, datetime]:
        """The campaign's reminder ladder."""

    @abc.abstractmethod
    async def create_broadcast(
        self,
        campaign_id: int,
        key: str,
        kind: str,
        subject: str,
        default_language: str,
        volunteers: bool = True,
        tally_posts_only: bool = False,
        tally_hours: Collection[int] | None = None,
        platforms: Collection[str] | None = None,
        started: Callable[[], object] | None = None,
    ) -> Broadcast | None:
        """Create a broadcast and expand its recipients (subscribed communities, only those
        with tally posts on if asked, and opted-in volunteers unless told not to; only on
        `platforms` when given) into deliveries, in steps short enough that other writes go
        between them, resumable after a crash; `started` is called once its first rows can
        be sent. Returns after the first step; the rest is added in the background
        (`expansions_done`). None if the key already exists (an expansion a crash cut
        short is finished first)."""

    @abc.abstractmethod
    async def finish_expansions(self) -> int:
        """Finish expanding the broadcasts a stop interrupted; how many there were."""

    @abc.abstractmethod
    async def expansions_done(self) -> None:
        """Wait until every broadcast this process is expanding has all its recipients."""

    @abc.abstractmethod
    async def save_announcement(self, campaign_id: int, texts: dict[str, str], source: str) -> int:
        """Keep an organizer's announcement (texts per language) until it is sent; its id."""

    @abc.abstractmethod
    async def announcement(self, announcement_id: int) -> tuple[dict[str, str], str] | None:
        """An announcement's texts per language and its fallback language."""

    @abc.abstractmethod
    async def recipient_counts(self) -> dict[str, int]:
        """How many recipients a broadcast would have now, per platform."""

    @abc.abstractmethod
    async def claim_deliveries(self, platform: str, limit: int) -> list[Delivery]:
        """Mark up to `limit` due pending deliveries of a platform in flight; return them."""

    @abc.abstractmethod
    async def finish_deliveries(self, finished: list[Finished]) -> None:
        """Record how deliveries ended: sent, failed, unreachable, or pending (retry). When
        this ends the last reminder of the campaign's ladder (nothing of it left to send),
        the campaign is over for private messages: every volunteer's address is dropped,
        as if each had opted out."""

    @abc.abstractmethod
    async def next_due(self, platform: str) -> datetime | None:
        """When the platform's earliest waiting delivery comes due (None: nothing waits)."""

    @abc.abstractmethod
    async def mark_sending(self, delivery_id: int) -> None:
        """A claimed delivery's request is about to go out."""

    @abc.abstractmethod
    async def recover_inflight(
        self, platform: str, resend_within: timedelta | None
    ) -> dict[str, int]:
        """After a crash, settle the platform's rows left in flight: those never sent go back
        to pending; those sent within `resend_within` (a platform that deduplicates) too;
        the rest become unknown. A row whose reader opted out meanwhile (its address is gone)
        is never sent again: failed if it never left, else unknown. How many went each way
        ("pending", "unknown", and "failed" when any)."""

    @abc.abstractmethod
    async def set_progress(self, broadcast_id: int, where: str | None) -> None:
        """Remember where a broadcast's progress message is (None: its report is shown)."""

    @abc.abstractmethod
    async def open_progress(self, platform: str) -> list[tuple[int, str]]:
        """The broadcasts whose progress message on `platform` awaits its final report."""

    @abc.abstractmethod
    async def delivery_counts(self, broadcast_id: int) -> dict[str, int]:
        """How many deliveries of a broadcast are in each state."""

    @abc.abstractmethod
    async def broadcasts_made(self, keys: list[str]) -> set[str]:
        """Which of these idempotency keys already have their broadcast (a rung sent)."""

"""The sender: drains the outbox's deliveries through each platform's transport.

Broadcasts are expanded into delivery rows by storage in one transaction; this module
claims pending rows, renders each in its recipient's language, hands it to the platform's
transport and records the outcome.

Each platform keeps at most `transport.window` rows claimed (in flight), topped up as
sends finish, so the pacer never starves. A claimed row is marked as sending just before
its request goes out. After a crash, rows that never went out are simply sent; rows that
did are resent where the platform deduplicates by nonce (a transport's `resend_within`)
and marked unknown elsewhere, so nobody gets a message twice. A rate-limited destination
gives its row back with a time to wait (`RetryLater`) instead of holding a place in the
window; passing failures come back with exponential backoff, a few times.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from bot.core import i18n
from bot.core.text import with_opt_out
from bot.core.types import PING_KEY, Button
from bot.services.container import Services
from bot.services.reminders import render
from storage.base import Delivery, Finished

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BACKOFF = 2.0  # seconds before the first retry of a passing failure, doubled each time
IDLE_WAKE = 5.0  # seconds between two looks at the outbox when nothing wakes the sender
STOP_GRACE = 10.0  # seconds a stopping sender waits for the messages it is sending


class Outcome(StrEnum):
    """How one delivery attempt ended."""

    SENT = "sent"
    UNREACHABLE = "unreachable"  # blocked, kicked, deleted: stop writing there
    RETRY = "retry"  # a passing failure, before anything went out
    FAILED = "failed"  # will not work
    UNKNOWN = "unknown"  # it may have arrived, and the platform cannot deduplicate a resend


class RetryLater(Exception):
    """The platform asked to wait before writing to this destination again."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds:.1f} s")
        self.seconds = seconds


OnSend = Callable[[], Awaitable[None]]


def mention_for(variants: dict[str, str], delivery: Delivery) -> str | None:
    """The role an announcement's copy pings: only the one community's it names."""
    platform, _, rest = variants.get(PING_KEY, "").partition(":")
    chat_id, _, role = rest.rpartition(":")
    if delivery.personal or (platform, chat_id) != (delivery.platform, delivery.address):
        return None
    return role or None


class Transport(Protocol):
    """What a front-end offers the outbox: one message to one address."""

    platform: str
    # How long the platform drops a resend with the same nonce (None: it cannot), so a
    # message that was going out at a crash is resent within that time, else unknown.
    resend_within: timedelta | None
    window: int  # how many deliveries may be in flight at once

    async def deliver(
        self,
        address: str,
        text: str,
        nonce: str,
        buttons: tuple[Button, ...] = (),
        on_send: OnSend | None = None,
        mention: str | None = None,
    ) -> Outcome:
        """Send text (and buttons) to address, awaiting on_send just before the first
        request goes out; nonce identifies the delivery; `mention` (a role to ping there;
        given only to a transport of the platform that chose it) may be ignored; may raise
        RetryLater."""
        ...


class Outbox:
    """Drains deliveries for every registered transport."""

    def __init__(self, services: Services, idle: float = IDLE_WAKE) -> None:
        self.services = services
        # Seconds between two looks at the outbox when nothing wakes the sender (retries
        # coming due, rows another process made); new broadcasts wake it at once.
        self.idle = idle
        self.transports: dict[str, Transport] = {}
        self._wakes: dict[str, asyncio.Event] = {}
        self._task: asyncio.Task[None] | None = None
        self._announcements: dict[str, tuple[dict[str, str], str]] = {}

    def register(self, transport: Transport) -> None:
        """Deliver this platform's rows through transport; broadcasts now reach it."""
        self.transports[transport.platform] = transport
        self.services.platforms = frozenset(self.transports)

    async def recover(self) -> None:
        """Settle rows a previous process left in flight, and finish adding the recipients
        of a broadcast it was expanding."""
        if await self.services.storage.finish_expansions():
            log.warning("outbox: finished expanding a broadcast a stop interrupted")
        for platform, transport in self.transports.items():
            settled = await self.services.storage.recover_inflight(
                platform, transport.resend_within
            )
            if any(settled.values()):
                log.warning(
                    "outbox: %s deliveries in flight at a crash: %d to send again, %d unknown",
                    platform,
                    settled["pending"],
                    settled["unknown"],
                )

    def wake(self) -> None:
        """New rows are waiting."""
        for event in self._wakes.values():
            event.set()

    async def drain(self) -> int:
        """Deliver everything due now, every platform at once; how many rows were handled."""
        counts = await asyncio.gather(
            *(self._drain(transport) for transport in self.transports.values())
        )
        return sum(counts)

    async def _drain(self, transport: Transport) -> int:
        storage = self.services.storage
        window = max(1, transport.window)
        running: set[asyncio.Task[None]] = set()
        handled = 0
        try:
            while True:
                free = window - len(running)
                # Top up a quarter window at a time: fewer claims, the pacer never starves.
                if free >= max(1, window // 4):
                    batch = await storage.claim_deliveries(transport.platform, free)
                    for delivery in batch:
                        running.add(asyncio.create_task(self._send(transport, delivery)))
                    handled += len(batch)
                    if not batch and not running:
                        return handled
                # Wait for one send to end (or a second, for retries coming due), then top up:
                # a slow send never holds back the rows behind it.
                _done, running = await asyncio.wait(
                    running, timeout=1.0, return_when=asyncio.FIRST_COMPLETED
                )
        except asyncio.CancelledError:
            # Stopping: let the sends already under way finish and be recorded, so a clean
            # shutdown leaves nothing in flight (and nothing unknown on Telegram).
            if running:
                _done, late = await asyncio.wait(running, timeout=STOP_GRACE)
                for task in late:
                    task.cancel()
            raise

    async def _send(self, transport: Transport, delivery: Delivery) -> None:
        try:
            finished = await self._attempt(transport, delivery)
            await self.services.storage.finish_deliveries([finished])
            self.services.deliveries_changed()
        except Exception:
            # The row stays in flight; the next start settles it like a crash would.
            log.exception("outbox: a %s delivery could not be recorded", delivery.platform)

    async def _attempt(self, transport: Transport, delivery: Delivery) -> Finished:
        async def on_send() -> None:
            await self.services.storage.mark_sending(delivery.id)

        try:
            text, buttons, mention = await self._compose(delivery)
            if not text:
                return Finished(delivery.id, "failed")
            extra = {"mention": mention} if mention is not None else {}
            outcome = await transport.deliver(
                delivery.address, text, f"d{delivery.id}", buttons, on_send, **extra
            )
        except RetryLater as wait:
            self.services.telemetry.delivery(delivery.platform, "rate_limited")
            later = datetime.now(UTC) + timedelta(seconds=wait.seconds)
            return Finished(delivery.id, "pending", later, counted=False)
        except Exception:
            log.exception("outbox: a %s delivery failed", delivery.platform)
            outcome = Outcome.RETRY
        self.services.telemetry.delivery(delivery.platform, str(outcome))
        if outcome is Outcome.RETRY:
            if delivery.attempts >= MAX_ATTEMPTS:
                return Finished(delivery.id, "failed")
            backoff = timedelta(seconds=BACKOFF * 2 ** (delivery.attempts - 1))
            return Finished(delivery.id, "pending", datetime.now(UTC) + backoff)
        return Finished(delivery.id, str(outcome))

    async def _announcement(self, subject: str) -> tuple[dict[str, str], str]:
        cached = self._announcements.get(subject)
        if cached is None:
            found = await self.services.storage.announcement(int(subject))
            cached = found if found is not None else ({}, "en")
            self._announcements[subject] = cached
        return cached

    async def _compose(self, delivery: Delivery) -> tuple[str, tuple[Button, ...], str | None]:
        """The delivery's text and buttons, in its recipient's language, and the role its
        copy pings (an announcement's, in one community), if any."""
        texts = None
        if delivery.kind == "announcement":
            texts = await self._announcement(delivery.subject)
        with i18n.use(self.services.catalogs.get(delivery.language)):
            if texts is None:
                text, buttons = render(
                    delivery.kind,
                    delivery.subject,
                    self.services,
                    delivery.platform,
                    delivery.personal,
                )
                return text, buttons, None
            variants, source = texts
            text = variants.get(delivery.language) or variants.get(source, "")
            if text and delivery.personal:
                text = with_opt_out(text)
            return text, (), mention_for(variants, delivery)

    async def _next_wake(self, platform: str) -> float:
        """Seconds until the platform's earliest waiting row comes due (at most `idle`)."""
        due = await self.services.storage.next_due(platform)
        if due is None:
            return self.idle
        return min(self.idle, max(0.05, (due - datetime.now(UTC)).total_seconds()))

    async def _run(self, transport: Transport, wake: asyncio.Event) -> None:
        """One platform's sender: drain whenever woken, and when waiting rows come due. Each
        platform has its own, so a long broadcast on one never delays another's."""
        while True:
            try:
                await self._drain(transport)
                timeout = await self._next_wake(transport.platform)
            except Exception:
                log.exception("outbox: %s drain failed; will try again", transport.platform)
                timeout = min(self.idle, IDLE_WAKE)
            # asyncio.timeout, not wait_for: on Python 3.11, wait_for swallows a cancellation
            # that comes as the event is set, and stop() would then wait for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await wake.wait()
            wake.clear()

    async def run(self) -> None:
        """Run every platform's sender until cancelled; a broadcast a handler makes (an
        announcement, a milestone) wakes it at once."""
        self._wakes = {platform: asyncio.Event() for platform in self.transports}
        for event in self._wakes.values():
            event.set()  # a first look at once
        listeners = self.services.broadcast_listeners
        listeners.append(self.wake)
        try:
            await asyncio.gather(
                *(self._run(t, self._wakes[p]) for p, t in self.transports.items())
            )
        finally:
            listeners.remove(self.wake)

    def start(self) -> None:
        """Drain in the background."""
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        """Stop draining."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

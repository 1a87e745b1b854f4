"""The sender: drains the outbox's deliveries, one platform at a time, through transports.

Broadcasts are expanded into delivery rows by storage in one transaction; this module only
claims pending rows, renders each in its recipient's language and hands it to the
platform's transport, then records the outcome. After a crash, rows left in flight are
resent where the platform deduplicates (a transport with `resend_inflight`) and marked
unknown elsewhere, so nobody gets a message twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from enum import StrEnum
from typing import Protocol

from bot import i18n
from bot.i18n import Raw, _
from bot.reminders import render
from bot.services import Services
from handlers.common import paragraphs
from storage.base import Delivery

log = logging.getLogger(__name__)

BATCH = 500  # rows claimed at a time; the pacer, not the batch, sets the rate
MAX_ATTEMPTS = 5
RETRY_EVERY = 5.0  # seconds between two drains when nothing wakes the sender


class Outcome(StrEnum):
    """How one delivery attempt ended."""

    SENT = "sent"
    UNREACHABLE = "unreachable"  # blocked, kicked, deleted: stop writing there
    RETRY = "retry"  # a passing failure
    FAILED = "failed"  # will not work


class Transport(Protocol):
    """What a front-end offers the outbox: one message to one address."""

    platform: str
    resend_inflight: bool

    async def deliver(self, address: str, text: str, nonce: str) -> Outcome:
        """Send text to address; nonce identifies the delivery (for deduplication)."""
        ...


class Outbox:
    """Drains deliveries for every registered transport."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.transports: dict[str, Transport] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._announcements: dict[str, tuple[dict[str, str], str]] = {}

    def register(self, transport: Transport) -> None:
        """Deliver this platform's rows through transport."""
        self.transports[transport.platform] = transport

    async def recover(self) -> None:
        """Settle rows a previous process left in flight."""
        for platform, transport in self.transports.items():
            count = await self.services.storage.recover_inflight(
                platform, resend=transport.resend_inflight
            )
            if count:
                log.warning("outbox: %d %s deliveries were in flight at a crash", count, platform)

    def wake(self) -> None:
        """New rows are waiting."""
        self._wake.set()

    async def drain(self) -> int:
        """Deliver everything pending now; how many rows were handled."""
        handled = 0
        for platform, transport in self.transports.items():
            while batch := await self.services.storage.claim_deliveries(platform, BATCH):
                outcomes = await asyncio.gather(*(self._one(transport, d) for d in batch))
                await self.services.storage.finish_deliveries(
                    {d.id: state for d, state in zip(batch, outcomes, strict=True)}
                )
                handled += len(batch)
                if "pending" in outcomes:
                    break  # a passing failure: try this platform again at the next drain
        return handled

    async def _announcement(self, subject: str) -> tuple[dict[str, str], str]:
        cached = self._announcements.get(subject)
        if cached is None:
            found = await self.services.storage.announcement(int(subject))
            cached = found if found is not None else ({}, "en")
            self._announcements[subject] = cached
        return cached

    async def _one(self, transport: Transport, delivery: Delivery) -> str:
        texts: tuple[dict[str, str], str] | None = None
        if delivery.kind == "announcement":
            texts = await self._announcement(delivery.subject)
        with i18n.use(self.services.catalogs.get(delivery.language)):
            if texts is not None:
                variants, source = texts
                text = variants.get(delivery.language) or variants.get(source, "")
                if delivery.personal:
                    text = paragraphs(
                        text,
                        _(
                            "To stop these reminders, send {command}.",
                            command=Raw("/reminders off"),
                        ),
                    )
            else:
                text = render(
                    delivery.kind,
                    delivery.subject,
                    self.services,
                    delivery.platform,
                    delivery.personal,
                )
        if not text:
            return "failed"
        try:
            outcome = await transport.deliver(delivery.address, text, f"d{delivery.id}")
        except Exception:
            log.exception("outbox: a %s delivery failed", delivery.platform)
            outcome = Outcome.RETRY
        if outcome is Outcome.RETRY:
            return "pending" if delivery.attempts < MAX_ATTEMPTS else "failed"
        return str(outcome)

    async def run(self) -> None:
        """Drain whenever woken (and every few seconds, for retries)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=RETRY_EVERY)
            self._wake.clear()
            try:
                await self.drain()
            except Exception:
                log.exception("outbox: drain failed; will try again")

    def start(self) -> None:
        """Drain in the background."""
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        """Stop draining."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

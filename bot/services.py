"""The one object handlers receive: everything the composition root built."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from bot.campaign import Campaign
from bot.i18n import Catalogs
from bot.identity import Identities
from bot.ratelimit import FloodGuard
from bot.registry import Registry
from bot.settings import Settings
from storage.base import Storage


@dataclass(slots=True)
class Services:
    """Settings, storage, catalogs and helpers, wired once by bot.bootstrap."""

    settings: Settings
    storage: Storage
    catalogs: Catalogs
    identities: Identities
    registry: Registry
    campaign: Campaign
    flood: FloodGuard
    clock: Callable[[], datetime]
    # Every board follows the overall total, so a count change anywhere touches them all.
    count_listeners: list[Callable[[], None]] = field(default_factory=list)

    def counts_changed(self) -> None:
        """Tell every live board (every platform's) that pledge counts changed."""
        for listener in self.count_listeners:
            listener()

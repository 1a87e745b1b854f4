"""Pacing under the platforms' limits (bot/delivery/pacing.py): what reaches a chat is spaced
as the limits say, even when a message leaves late after its turn."""

from __future__ import annotations

import asyncio

from bot.delivery.pacing import CHAT_MARGIN, Pacer


async def test_a_message_that_leaves_late_keeps_its_distance_from_the_next() -> None:
    # Turns are spaced, but a message may leave late after its turn (its record waits for
    # the database): it must still not reach the chat right before (or after) the next one.
    pacer = Pacer(overall_per_second=1000, per_chat_per_second=10, per_group_per_minute=600)
    loop = asyncio.get_running_loop()
    left: dict[str, float] = {}

    async def send(name: str, held: float) -> None:
        await pacer.slot(-100, group=True)
        await asyncio.sleep(held)  # e.g. its record waits for the database's writer
        await pacer.depart(-100, group=True)
        left[name] = loop.time()

    late = asyncio.create_task(send("late", 0.2))
    await asyncio.sleep(0.01)
    await send("on time", 0.0)  # its turn comes 0.125 s after the late one's
    await late
    spacing = 1 / 10 * CHAT_MARGIN  # a chat's one second, shared by ten messages, with margin
    assert abs(left["late"] - left["on time"]) >= spacing * 0.999

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


async def test_a_board_edit_takes_the_chat_s_next_turn_before_waiting_posts() -> None:
    # A group's turns are few (20 a minute): when a post and the live board's edit both
    # wait for the next one, the board goes first, so it shows the count a turn sooner.
    pacer = Pacer(overall_per_second=1000, per_chat_per_second=5, per_group_per_minute=600)
    order: list[str] = []

    async def send(name: str, first: bool) -> None:
        await pacer.slot(-100, group=True, first=first)
        order.append(name)

    await send("earlier post", first=False)  # takes the turn there was: the others wait
    post = asyncio.create_task(send("post", first=False))
    await asyncio.sleep(0.02)  # the post waits first
    board = asyncio.create_task(send("board", first=True))
    await asyncio.gather(post, board)
    assert order == ["earlier post", "board", "post"]

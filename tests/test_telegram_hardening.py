"""Telegram findings of the hardening pass, each through the real python-telegram-bot against
the fake Bot API server: a busy group never stalls other chats, an answer that timed out is
never sent twice, and a command ends at any whitespace."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.test_telegram_e2e import ORGANIZER, World, telegram_world

GROUP = -100600


async def test_a_busy_group_never_stalls_a_private_pledge(tmp_path: Path) -> None:
    """Three hundred members send /tally in one group (which may get 20 messages a minute):
    a volunteer's private /pledge elsewhere is answered at once, and the group gets its
    tally a couple of times, not three hundred times over five minutes."""
    async with telegram_world(tmp_path) as world:
        server = world.server
        server.add_group(GROUP, "Busy")
        for member in range(3000, 3300):
            server.add_user(member, "M", "en")
            server.user_sends(member, GROUP, "/tally")
        server.add_user(3999, "P", "fr")
        server.user_sends(3999, 3999, "/pledge")
        await server.wait_for(lambda: len(server.messages(3999)) == 1, timeout=20)
        assert "Merci" in server.messages(3999)[0]["text"]
        assert len(server.messages(GROUP)) <= 2, "the private answer did not wait for the group"
        answers = world.frontend.group_answers
        await server.wait_for(lambda: not server._pending, timeout=20)
        await server.wait_for(lambda: answers.waiting == 0 and not answers._tasks, timeout=30)
        tallies = server.messages(GROUP)
        # Answers to one command coalesce while they wait: one goes out, the newest waits.
        # Updates come in batches of 100, so a batch that lands after the group went quiet
        # may start one more round: at most two messages per batch of three.
        assert 1 <= len(tallies) <= 6, "answers to one command coalesce while they wait"
        assert all("pledged" in m["text"] for m in tallies)


async def test_an_answer_that_timed_out_is_never_sent_twice(tmp_path: Path) -> None:
    """Telegram is slow: python-telegram-bot gives up after its 5 s read timeout, and the
    message arrives all the same. Sending it again would make a duplicate."""
    async with telegram_world(tmp_path) as world:
        server = world.server
        server.add_user(3100, "T", "en")
        server.fail_next("sendMessage", delay=5.5)
        server.user_sends(3100, 3100, "/tally")
        await server.wait_for(lambda: len(server.messages(3100)) == 1, timeout=10)
        await asyncio.sleep(3)  # a retry would have gone out by now (backoff 0.5 s)
        sends = [p for m, p in server.requests if m == "sendMessage" and p["chat_id"] == 3100]
        assert len(sends) == 1 and len(server.messages(3100)) == 1


async def test_a_command_ends_at_any_whitespace(tmp_path: Path) -> None:
    async with telegram_world(tmp_path, telegram_organizer_ids=str(ORGANIZER)) as world:
        server = world.server
        server.add_user(3200, "W", "en")
        server.user_sends(3200, 3200, "/pledge\ninsta")
        (answer,) = await World.answer_in(world, 3200)
        assert "Your pledge is recorded" in answer["text"] and "Instagram" in answer["text"]
        server.user_sends(3200, 3200, "/mypledge\u00a0")
        await world.answer_in(3200, 2)
        assert "Instagram" in server.messages(3200)[-1]["text"]
        server.add_user(ORGANIZER, "O", "en")
        server.user_sends(ORGANIZER, ORGANIZER, "/announce\nen: Freeze tomorrow!\nfr: Gel demain !")
        (preview,) = await world.answer_in(ORGANIZER)
        assert "Freeze tomorrow!" in preview["text"] and "Gel demain !" in preview["text"]
        assert "I don't know the command" not in preview["text"]

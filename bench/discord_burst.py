"""Benchmark: 5,000 distinct members press a Discord board's button within 10 seconds.

Each press is a real INTERACTION_CREATE payload handed to discord.py's own gateway parser
(`ConnectionState.parse_interaction_create`), so discord.py builds the Interaction, routes
it to the persistent board view, our core handles the pledge, and discord.py sends the
ephemeral answer over HTTP. Discord's REST API is tests/fakes/discord_rest.py on 127.0.0.1
(the answer lands on the interaction callback route; board edits are PATCHes with Discord's
global limit and channel buckets). There is no gateway socket: the press is injected where
the socket's JSON would arrive.

Prints the ack latency p50/p99 (payload handed to discord.py -> answer received by the
server) and the seconds from the last press until the board shows the exact count.

    .venv/bin/python bench/discord_burst.py [--members 5000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from discord.http import Route  # noqa: E402

from bot.app.bootstrap import bootstrap  # noqa: E402
from bot.core.settings import Settings  # noqa: E402
from bot.frontends.discord import PLEDGE_BUTTON_ID, DiscordFrontend  # noqa: E402
from tests.fakes.discord_rest import FakeDiscordREST  # noqa: E402

TOKEN = "M" + "a" * 23 + "." + "b" * 6 + "." + "c" * 27
APPLICATION = 4242
GUILD = 700_000_000_000_000_001
CHANNEL = 700_000_000_000_000_002
COUNT = re.compile(r"([\d,]+) volunteers? ha(?:s|ve) pledged in this community")
_ids = itertools.count(800_000_000_000_000_000)


def press(user: int, board: dict[str, Any], locale: str) -> dict[str, Any]:
    """An INTERACTION_CREATE payload: a member pressing the board's button."""
    return {
        "id": str(next(_ids)),
        "application_id": str(APPLICATION),
        "type": 3,
        "token": f"token-{user}",
        "version": 1,
        "guild_id": str(GUILD),
        "channel_id": str(CHANNEL),
        "channel": {
            "id": str(CHANNEL),
            "type": 0,
            "guild_id": str(GUILD),
            "name": "general",
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        },
        "member": {
            "user": {
                "id": str(user),
                "username": f"member{user}",
                "discriminator": "0",
                "global_name": None,
                "avatar": None,
            },
            "roles": [],
            "joined_at": "2026-11-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
            "permissions": "1071698660929",
        },
        "app_permissions": "1071698660929",
        "locale": locale,
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": str(GUILD)},
        "context": 0,
        "attachment_size_limit": 10485760,
        "message": board,
        "data": {"custom_id": PLEDGE_BUTTON_ID, "component_type": 2},
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeDiscordREST() as rest:
            Route.BASE = rest.base  # this process talks to the fake only
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                data_dir=Path(tmp),
                pepper="bench-pepper-" + "d" * 40,
                discord_token=TOKEN,  # type: ignore[arg-type]
                discord_sync="off",
                discord_shard_count=1,
                campaign_start="2026-12-16T09:00",  # type: ignore[arg-type]
                campaign_end="2026-12-17T09:00",  # type: ignore[arg-type]
                log_level="WARNING",
            )
            async with bootstrap(settings) as (services, dispatcher):
                frontend = DiscordFrontend(services, dispatcher)
                client = frontend.client
                await client.login(TOKEN)  # GET /users/@me, then setup_hook
                client._connection.application_id = APPLICATION
                await frontend.lead()  # the only process: it edits the boards
                ref = await frontend.publish_board(str(GUILD), CHANNEL)
                board_id = int(ref.split(":")[1])
                board = rest._message(CHANNEL, board_id, {})
                board["components"] = [
                    {
                        "type": 1,
                        "components": [
                            {
                                "type": 2,
                                "style": 3,
                                "label": "I pledge",
                                "custom_id": PLEDGE_BUTTON_ID,
                            }
                        ],
                    }
                ]
                state = client._connection
                created: dict[int, float] = {}
                loop = asyncio.get_running_loop()
                rate = args.members / args.seconds
                start = loop.time()
                first = time.monotonic()
                sent = 0
                while sent < args.members:
                    due = min(args.members, int((loop.time() - start) * rate) + 1)
                    while sent < due:
                        payload = press(10_000 + sent, board, ("en-US", "fr", "en-GB")[sent % 3])
                        created[int(payload["id"])] = time.monotonic()
                        state.parse_interaction_create(payload)  # type: ignore[arg-type]
                        sent += 1
                    await asyncio.sleep(0.002)
                last = time.monotonic()
                offered = last - first
                deadline = time.monotonic() + 60
                exact_at: float | None = None
                while time.monotonic() < deadline:
                    answered = sum(i in rest.callbacks for i in created)
                    for at, message, payload in rest.edits:
                        if message != board_id or exact_at is not None:
                            continue
                        text = " ".join(e.get("description", "") for e in payload.get("embeds", []))
                        found = COUNT.search(text)
                        if found and int(found.group(1).replace(",", "")) == args.members:
                            exact_at = at
                    if answered == len(created) and exact_at is not None:
                        break
                    await asyncio.sleep(0.05)
                latencies = sorted(
                    rest.callbacks[i][0] - t for i, t in created.items() if i in rest.callbacks
                )
                ephemeral = sum(
                    1
                    for i in created
                    if i in rest.callbacks and rest.callbacks[i][1]["data"].get("flags", 0) & 64
                )
                await frontend.stop()
    p50 = statistics.median(latencies)
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
    board_exact = f"{exact_at - last:.2f} s" if exact_at is not None else "never"
    print(
        f"python {sys.version.split()[0]}; {args.members:,} distinct members in "
        f"{args.seconds:.0f} s ({rate:,.0f} presses/s offered, {offered:.1f} s of pressing)"
    )
    print(f"answered: {len(latencies):,} of {args.members:,} ({ephemeral:,} ephemeral)")
    print(f"ack latency: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
    print(
        f"board exact: {board_exact} after the last press "
        f"({len([e for e in rest.edits if e[1] == board_id])} board edits)"
    )
    print(f"429s: {rest.rejected_429}")


if __name__ == "__main__":
    asyncio.run(main())

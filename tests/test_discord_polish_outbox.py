"""An announcement that names a role pings it in the home server's copy only, end to end:
/announce with a role option, the preview, the organizer's press, then the outbox through
the real discord.py client against simcord.

This one needs the outbox to hand an announcement's chosen role to the transport of that
one community's copy (the `mention` argument of `Transport.deliver`; see the report of
issue 15's Discord polish): tests/test_discord_polish.py covers each side on its own."""

from __future__ import annotations

from tests.test_discord_polish import World, role_pings, start_world

world = start_world(("en-US", "en-US"))


async def test_an_announcement_pings_the_chosen_role_in_the_home_server_only(
    world: World,
) -> None:
    volunteers = world.home.create_role("Volunteers", mentionable=True)
    press = world.home.create_role("Press", mentionable=True)
    await world.mod.slash(world.channel, "board")  # the home server's channel for posts
    await world.other_mod.slash(world.other_channel, "board")
    ana = world.member("ana")
    await ana.slash(world.channel, "reminders", state="on")  # a private copy too
    text = f"Freeze tomorrow! @everyone @here <@&{press.id}>"
    preview = await world.mod.slash(world.channel, "announce", ping=volunteers, text=text)
    assert preview.ephemeral
    content = preview.response.content
    assert f"In this server, it will ping <@&{volunteers.id}>" in content
    assert "everywhere else it pings nobody" in content
    callbacks = [r for r in world.env.http_requests if r.path.endswith("/callback")]
    assert callbacks[-1].json["data"]["allowed_mentions"] == {"parse": []}  # the preview: none
    sent = await world.mod.click(preview.response, label="Send to everyone")
    assert "Sending your announcement to 3 recipients." in sent.response.content
    assert await (await world.outbox()).drain() == 3
    await world.env.settle()

    home_text, home_roles, home_everyone = role_pings(world, world.channel)
    assert home_text.startswith(f"<@&{volunteers.id}>\n")
    assert text in home_text
    assert home_roles == [volunteers.id], "exactly the chosen role, not the one in the text"
    assert not home_everyone
    other_text, other_roles, other_everyone = role_pings(world, world.other_channel)
    assert other_text == text  # no mention of a role that is not this server's
    assert other_roles == [] and not other_everyone
    private = ana.user.dm_channel.last_message.content
    assert "Freeze tomorrow!" in private and f"<@&{volunteers.id}>" not in private
    posts = [
        r.json["allowed_mentions"]
        for r in world.env.http_requests
        if r.method == "POST" and "nonce" in (r.json or {})
    ]
    # what discord.py asked Discord for: one post allows exactly that role, the others none
    allowing = [post for post in posts if post != {"parse": []}]
    assert len(allowing) == 1 and allowing[0]["parse"] == []
    assert [int(role) for role in allowing[0]["roles"]] == [volunteers.id]
    assert not allowing[0].get("users") and not allowing[0].get("replied_user")

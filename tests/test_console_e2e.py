"""End to end through the console front-end, in each language."""

from __future__ import annotations

import pytest

from tests.conftest import App


async def test_english_pledge_twice_withdraw_tally_forget(app: App) -> None:
    out = await app.run("""
        /pledge
        """)
    assert "Thank you! Your pledge is recorded" in out
    assert "volunteer number 1." in out
    assert (
        "The freeze runs from Wed, Dec 16, 2026, 9:00\u202fAM to Thu, Dec 17, 2026, "
        "9:00\u202fAM (Central European Time)." in out
    )
    assert "#StopHateForProfit" in out

    out = await app.run("/pledge")
    assert "You have already pledged" in out and "Nothing changed." in out

    out = await app.run("/tally")
    assert "1 volunteer has pledged in this community." in out
    assert "1 volunteer has pledged in all." in out

    out = await app.run(":as karim\n/pledge facebook\n/tally")
    assert "volunteer number 2." in out
    assert "2 volunteers have pledged in this community." in out

    out = await app.run("/unpledge\n/tally")
    assert "Your pledge is withdrawn." in out
    assert "1 volunteer has pledged in all." in out

    out = await app.run("/unpledge")
    assert "You have no pledge to withdraw." in out

    out = await app.run(":as amina\n/forget\n:press 1\n/tally\n/mypledge")
    assert "It cannot be undone." in out
    assert "Done: everything about you is erased" in out
    assert "0 volunteers have pledged in all." in out
    assert "You have not pledged yet." in out


async def test_french_from_the_app_language(app: App) -> None:
    out = await app.run(":hint fr-FR\n/pledge instagram")
    assert "Merci" in out
    assert "16 déc. 2026" in out
    out = await app.run("/pledge instagram")
    assert "Rien n’a changé" in out
    out = await app.run("/tally")
    assert "1 personne s’est engagée dans cette communauté." in out
    out = await app.run(":as zoe\n:hint fr\n/tally")
    assert "1 personne s’est engagée au total." in out
    out = await app.run("/unpledge")
    assert "Vous n’avez aucun engagement à retirer." in out


async def test_arabic_chosen_with_language_then_kept(app: App) -> None:
    out = await app.run("/language ar")
    assert "بالعربية" in out
    out = await app.run("/pledge")
    assert "شكرًا" in out
    # the hint no longer matters: the stored choice wins
    out = await app.run(":hint fr\n/mypledge")
    assert "تعهّدك" in out
    out = await app.run("/forget confirm")
    assert "مُحي" in out or "محو" in out or "حُذف" in out


async def test_switching_language_changes_the_same_answer(app: App) -> None:
    english = await app.run("/tally")
    french = await app.run("/language fr\n/tally")
    arabic = await app.run("/language ar\n/tally")
    assert "volunteers have pledged" in english
    assert "au total" in french
    assert "إجمال" in arabic or "مجموع" in arabic or "الكل" in arabic
    back = await app.run("/language auto\n/tally")
    assert "volunteers have pledged" in back


async def test_board_button_pledges_and_group_answers_are_private(app: App) -> None:
    out = await app.run(":admin on\n/board")
    assert "bot [board]:" in out
    assert "[1] I pledge" in out
    out = await app.run(":as lea\n:admin off\n:press 1")
    assert "bot (only lea sees this): Thank you!" in out


async def test_organizer_command_refused_to_a_volunteer(app: App) -> None:
    out = await app.run("/board")
    assert "Sorry, only this community's admins can use /board here." in out
    out = await app.run(":organizer on\n/board")  # the coalition's, not this community's
    assert "only this community's admins can use /board" in out
    out = await app.run(":organizer off\n:hint ar\n/board")
    assert "/board" in out and "مشرفي هذه المجموعة" in out
    out = await app.run(":hint fr\n/subscribe off")
    assert "administrateurs" in out


async def test_bad_input_gets_localized_usage(app: App) -> None:
    out = await app.run("/pledge twitter")
    assert "I did not understand “twitter”. Usage: /pledge [both|instagram|facebook]" in out
    out = await app.run(":hint fr\n/frobnicate")
    assert "/frobnicate" in out and "/help" in out and "know" not in out
    out = await app.run(":hint ar\n/timezone Mars/Olympus")
    assert "Mars/Olympus" in out and "Europe/Paris" in out


async def test_stop_word_in_private_turns_reminders_off(app: App) -> None:
    out = await app.run(":private\n/reminders on\n/mydata")
    assert "Reminders are on." in out
    assert "• Reminders: on" in out
    out = await app.run("توقف\n/mydata")
    assert "• Reminders: off; no address is kept" in out


FLOW = {
    "en": {
        "new": "Thank you! Your pledge is recorded",
        "twice": "Nothing changed.",
        "tally": "2 volunteers have pledged in this community.",
        "withdrawn": "Your pledge is withdrawn.",
        "after": "1 volunteer has pledged in all.",
        "ask": "It cannot be undone.",
        "forgotten": "Done: everything about you is erased",
        "gone": "You have not pledged yet.",
    },
    "fr": {
        "new": "Merci\u00a0! Votre engagement est enregistré",
        "twice": "Rien n’a changé.",
        "tally": "2 personnes se sont engagées dans cette communauté.",
        "withdrawn": "Votre engagement a été retiré.",
        "after": "1 personne s’est engagée au total.",
        "ask": "C’est irréversible.",
        "forgotten": "toutes vos données ont été effacées",
        "gone": "Vous n’avez pas encore pris d’engagement.",
    },
    "ar": {
        "new": "شكرًا لك! سُجّل تعهّدك",
        "twice": "لم يتغير شيء.",
        "tally": "تعهّد متطوعان في هذه المجموعة.",
        "withdrawn": "تم سحب تعهّدك.",
        "after": "تعهّد متطوع واحد في المجموع.",
        "ask": "لا يمكن التراجع عن ذلك.",
        "forgotten": "حُذفت جميع بياناتك",
        "gone": "لا يوجد تعهّد باسمك بعد.",
    },
}


@pytest.mark.parametrize("lang", sorted(FLOW))
async def test_full_flow_in_each_language(app: App, lang: str) -> None:
    says = FLOW[lang]
    out = await app.run(f":as first\n:hint {lang}\n/pledge")
    assert says["new"] in out
    assert says["twice"] in await app.run("/pledge")
    await app.run(f":as second\n:hint {lang}\n/pledge both")
    assert says["tally"] in await app.run("/tally")
    assert says["withdrawn"] in await app.run("/unpledge")
    assert says["after"] in await app.run("/tally")
    out = await app.run(":as first\n/forget")
    assert says["ask"] in out
    assert says["forgotten"] in await app.run(":press 1")
    assert says["gone"] in await app.run("/mypledge")
    # Switching language changes the very next answer.
    other = "fr" if lang != "fr" else "ar"
    assert FLOW[other]["gone"] in await app.run(f"/language {other}\n/mypledge")


async def test_the_pledge_button_after_a_choice_changes_nothing(app: App) -> None:
    await app.run("/pledge instagram")
    out = await app.run(":admin on\n/board\n:admin off\n:press 1")
    assert "You have already pledged (Instagram)" in out
    assert "Instagram and Facebook" not in (await app.run("/mypledge")).split("freeze runs")[0]

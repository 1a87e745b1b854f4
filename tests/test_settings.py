"""Bad configuration stops start-up with one clear line naming the setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.core.settings import ConfigError, load_settings

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456789:AAH" + "q" * 32


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("COALITION_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env from the checkout


def assert_named(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], setting: str, says: str
) -> str:
    """Start-up with `env` stops with one line naming `setting` and saying `says`."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as error:
        load_settings()
    line = str(error.value)
    assert line.startswith(f"{setting}: ")
    assert says in line
    assert "\n" not in line
    return line


@pytest.mark.parametrize(
    ("env", "setting", "says"),
    [
        (
            {
                "COALITION_CAMPAIGN_START": "2026-12-16T09:00",
                "COALITION_CAMPAIGN_END": "2026-12-15",
            },
            "COALITION_CAMPAIGN_END",
            "ends before it starts",
        ),
        ({"COALITION_CAMPAIGN_TIMEZONE": "Mars/Olympus"}, "COALITION_CAMPAIGN_TIMEZONE", "unknown"),
        ({"COALITION_DEFAULT_LANGUAGE": "de"}, "COALITION_DEFAULT_LANGUAGE", "'ar', 'en' or 'fr'"),
        ({"COALITION_LOCALES_DIR": "/nowhere"}, "COALITION_LOCALES_DIR", "no catalog en/"),
        ({"COALITION_TELEGRAM_TOKEN": "not-a-token"}, "COALITION_TELEGRAM_TOKEN", "malformed"),
        ({"COALITION_DISCORD_TOKEN": "abc"}, "COALITION_DISCORD_TOKEN", "malformed"),
        ({"COALITION_PEPPER": "s3cr3t-pepper"}, "COALITION_PEPPER", "too short"),
        ({"COALITION_CAMPAIGN_START": "2026-12-16T09:00"}, "COALITION_CAMPAIGN_END", "both"),
        ({"COALITION_CAMPAIGN_GOAL": "0"}, "COALITION_CAMPAIGN_GOAL", "greater than"),
        ({"COALITION_TALLY_POST_HOURS": "0"}, "COALITION_TALLY_POST_HOURS", "greater than"),
        ({"COALITION_TALLY_POST_HOURS": "daily"}, "COALITION_TALLY_POST_HOURS", "integer"),
        (
            {"COALITION_DATABASE_URL": "mysql://bot:hunter2@db/coalition"},
            "COALITION_DATABASE_URL",
            "use postgresql://",
        ),
        (
            {"COALITION_DATABASE_URL": "postgresql://bot:hunter2@db/coalition"},
            "COALITION_PEPPER",
            "same pepper",
        ),
        (
            {
                "COALITION_DATABASE_URL": "postgresql://bot:hunter2@db/coalition",
                "COALITION_PEPPER": "p" * 40,
                "COALITION_TELEGRAM_WEBHOOK_URL": "https://bot.example.org/telegram",
            },
            "COALITION_TELEGRAM_WEBHOOK_SECRET",
            "same secret",
        ),
        ({"COALITION_DISCORD_SHARD_IDS": "0,1"}, "COALITION_DISCORD_SHARD_COUNT", "split"),
        (
            {"COALITION_DISCORD_SHARD_IDS": "0,2", "COALITION_DISCORD_SHARD_COUNT": "2"},
            "COALITION_DISCORD_SHARD_IDS",
            "from 0 to",
        ),
    ],
)
def test_wrong_setting_is_named(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], setting: str, says: str
) -> None:
    line = assert_named(monkeypatch, env, setting, says)
    for value in env.values():
        if "TOKEN" in setting or "PEPPER" in setting or "DATABASE_URL" in setting:
            assert value not in line
    assert "hunter2" not in line


def test_good_settings_and_empty_values_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COALITION_TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("COALITION_DATABASE_PATH", "")
    monkeypatch.setenv("COALITION_TELEGRAM_ORGANIZER_IDS", "12, 34 56")
    monkeypatch.setenv("COALITION_CAMPAIGN_TIMEZONE", "Africa/Cairo")
    monkeypatch.setenv("COALITION_CAMPAIGN_START", "2026-12-16T09:00")
    monkeypatch.setenv("COALITION_CAMPAIGN_END", "2026-12-17T09:00")
    settings = load_settings()
    assert settings.database_path is None
    assert settings.organizer_ids("telegram") == {"12", "34", "56"}
    assert settings.campaign_start is not None and settings.campaign_start.utcoffset() is not None
    assert TOKEN not in repr(settings) and TOKEN not in str(settings.model_dump())


def run_cli(env: dict[str, str], cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COALITION_")}
    return subprocess.run(
        [sys.executable, "-m", "bot", "console"],
        input=stdin,
        capture_output=True,
        text=True,
        env={**clean, **env, "PYTHONPATH": str(ROOT)},
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_cli_stops_with_one_line_and_no_token_in_it(tmp_path: Path) -> None:
    bad = "987654321:" + "z" * 10
    result = run_cli({"COALITION_TELEGRAM_TOKEN": bad}, tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "configuration error: COALITION_TELEGRAM_TOKEN: malformed token "
        "(expected the form 123456789:AA… from @BotFather)"
    ]
    assert bad not in result.stderr + result.stdout


def test_cli_reads_dot_env_and_runs_a_script(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "COALITION_DATA_DIR=state\nCOALITION_DEFAULT_LANGUAGE=fr\n", encoding="utf-8"
    )
    result = run_cli({}, tmp_path, stdin="/pledge\n/tally\n")
    assert result.returncode == 0, result.stderr
    assert "Merci" in result.stdout
    assert "1 personne" in result.stdout
    assert (tmp_path / "state" / "coalition.sqlite3").exists()
    assert (tmp_path / "state" / "pepper").stat().st_mode & 0o077 == 0
    pepper = (tmp_path / "state" / "pepper").read_text().strip()
    assert pepper not in result.stderr
    assert "Traceback" not in result.stderr


def test_a_console_script_sees_its_announcement_delivered_and_reported(tmp_path: Path) -> None:
    script = ":organizer on\n:private\n/reminders on\n/announce Freeze tomorrow!\n:press 1\n"
    result = run_cli({"COALITION_DATA_DIR": str(tmp_path / "state")}, tmp_path, stdin=script)
    assert result.returncode == 0, result.stderr
    assert "bot → dm-amina: Freeze tomorrow!" in result.stdout
    assert "Your announcement was delivered to 1 recipient." in result.stdout

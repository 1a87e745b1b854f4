"""The command line: `coalition-bot run` and `coalition-bot console`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sqlite3
import sys
from pathlib import Path

from bot.bootstrap import bootstrap
from bot.frontends.console import Console
from bot.logs import setup_logging
from bot.settings import ConfigError, Settings, load_settings

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coalition-bot",
        description="Chat bot for the volunteers of a coalition campaign.",
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=("run", "console"),
        help="run: every front-end with a token, or the console when none is set (default); "
        "console: the console front-end only",
    )
    parser.add_argument("--data-dir", type=Path, help="overrides COALITION_DATA_DIR")
    return parser


def _secrets(settings: Settings) -> list[str]:
    values = [settings.telegram_token, settings.discord_token, settings.pepper]
    return [v.get_secret_value() for v in values if v is not None]


async def _run(settings: Settings, command: str) -> int:
    platforms = [
        name
        for name, token in (
            ("telegram", settings.telegram_token),
            ("discord", settings.discord_token),
        )
        if token is not None
    ]
    if command == "run" and platforms:
        setting = f"COALITION_{platforms[0].upper()}_TOKEN"
        print(
            f"{setting}: this version has no {platforms[0].capitalize()} front-end yet; "
            "unset it to run the console",
            file=sys.stderr,
        )
        return 2
    async with bootstrap(settings) as (_services, dispatcher):
        await Console(dispatcher).run(sys.stdin)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `coalition-bot` script and of `python -m bot`."""
    args = _parser().parse_args(argv)
    overrides = {"data_dir": args.data_dir} if args.data_dir else {}
    try:
        settings = load_settings(**overrides)
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, _secrets(settings))
    try:
        return asyncio.run(_run(settings, args.command))
    except KeyboardInterrupt:
        return 130
    except (OSError, ValueError, sqlite3.Error) as error:
        # e.g. an unwritable data directory or a damaged pepper file: one line, no traceback.
        log.debug("start-up failed", exc_info=True)
        print(f"start-up failed: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""Secrets never reach the logs."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from bot.app.bootstrap import bootstrap
from bot.app.logs import RedactSecrets, setup_logging
from tests.conftest import make_settings

TOKEN = "123456789:AAH" + "s" * 32


def test_tokens_are_scrubbed_from_messages_arguments_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets([TOKEN]))
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("POST https://api.telegram.org/bot%s/getUpdates", TOKEN)
        try:
            raise RuntimeError(f"bad url .../bot{TOKEN}/sendMessage")
        except RuntimeError:
            logger.exception("request failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert TOKEN not in text
    assert "bot***/getUpdates" in text
    assert "bot***/sendMessage" in text


async def test_a_pepper_read_from_its_file_is_scrubbed_too(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The pepper may come from COALITION_PEPPER_FILE or the data directory, never from the
    settings the logger was set up with: the composition root adds it once it is read."""
    pepper_file = tmp_path / "pepper"
    pepper_file.write_text("p" * 20 + "secret-pepper-value-0123456789\n")
    settings = make_settings(tmp_path, pepper=None, pepper_file=pepper_file)
    setup_logging("INFO", [])
    try:
        async with bootstrap(settings):
            logging.getLogger("test.pepper").error("oops: %s", pepper_file.read_text().strip())
    finally:
        logging.getLogger().handlers.clear()
    err = capfd.readouterr().err
    assert "oops: ***" in err
    assert "secret-pepper-value" not in err

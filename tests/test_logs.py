"""Secrets never reach the logs."""

from __future__ import annotations

import io
import logging

from bot.logs import RedactSecrets

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

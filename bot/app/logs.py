"""Logging set-up: one format, and secrets scrubbed from every record."""

from __future__ import annotations

import logging
from collections.abc import Iterable


class RedactSecrets(logging.Filter):
    """Replaces every known secret (tokens, pepper) in a record's text with '***'."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 8]

    def filter(self, record: logging.LogRecord) -> bool:
        """Render the message once, scrub it, and keep the record."""
        if not self.secrets:
            return True
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        scrubbed = message
        for secret in self.secrets:
            scrubbed = scrubbed.replace(secret, "***")
            if record.exc_text:
                record.exc_text = record.exc_text.replace(secret, "***")
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


def redact(secret: str) -> None:
    """Scrub one more secret (a pepper read from its file) from every record from now on."""
    for handler in logging.getLogger().handlers:
        for found in handler.filters:
            if isinstance(found, RedactSecrets) and len(secret) >= 8:
                found.secrets.append(secret)


def setup_logging(level: str, secrets: Iterable[str] = ()) -> None:
    """Log to standard error, with secrets redacted and chatty libraries kept quiet."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL, and a Telegram URL contains the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # At DEBUG the platform libraries log whole requests and updates: user ids, names and
    # message text. Those never go to our logs, whatever the level asked for.
    for library in ("telegram", "discord", "httpcore", "aiohttp.access"):
        logging.getLogger(library).setLevel(max(logging.INFO, root.level))
    logging.getLogger("aiosqlite").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))

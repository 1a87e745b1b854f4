"""Keyed hashes of volunteer identities, and the secret pepper they are keyed with."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger(__name__)

PEPPER_FILE = "pepper"


class Identities:
    """Turns platform + user id into the opaque key under which a volunteer is stored."""

    __slots__ = ("_mac",)

    def __init__(self, pepper: bytes) -> None:
        if len(pepper) < 32:
            raise ValueError("the pepper must be at least 32 bytes")
        self._mac = hmac.new(pepper, digestmod=hashlib.sha256)

    def key(self, platform: str, user_id: str) -> bytes:
        """HMAC-SHA256(pepper, 'platform:user id'): stable, and useless without the pepper."""
        mac = self._mac.copy()
        mac.update(f"{platform}:{user_id}".encode())
        return mac.digest()

    def __repr__(self) -> str:
        return "Identities(<pepper hidden>)"


def load_or_create_pepper(data_dir: Path, configured: str | None) -> bytes:
    """The configured pepper, else the one in the data directory, created on first run."""
    if configured:
        return configured.encode()
    path = data_dir / PEPPER_FILE
    if path.exists():
        value = path.read_text(encoding="ascii").strip()
        if len(value) < 32:
            raise ValueError(f"{path} is damaged: delete it only if no volunteer is stored yet")
        return value.encode()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(value + "\n")
    log.info("created a new hashing pepper in the data directory (keep it with backups)")
    return value.encode()

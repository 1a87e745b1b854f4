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


def load_or_create_pepper(
    data_dir: Path, configured: str | None, pepper_file: Path | None = None
) -> bytes:
    """The pepper: COALITION_PEPPER, else the file COALITION_PEPPER_FILE names, else the
    data directory's; a missing file is created (mode 600) on first run."""
    if configured:
        if pepper_file is not None:
            log.info("COALITION_PEPPER is set: COALITION_PEPPER_FILE is not read")
        return configured.encode()
    if pepper_file is not None:
        path, setting = pepper_file, "COALITION_PEPPER_FILE"
        if not path.parent.is_dir():
            raise ValueError(f"{setting}: its folder does not exist")
    else:
        path, setting = data_dir / PEPPER_FILE, "COALITION_DATA_DIR"
        data_dir.mkdir(parents=True, exist_ok=True)
    if path.exists():
        value = path.read_text(encoding="ascii").strip()
        if len(value) < 32:
            raise ValueError(
                f"{setting}: the pepper file is damaged: delete it only if no volunteer "
                "is stored yet"
            )
        if path.stat().st_mode & 0o077:
            log.warning("the pepper file is readable by other users: chmod 600 it")
        return value.encode()
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(value + "\n")
    where = "its own file" if pepper_file is not None else "the data directory"
    log.info("created a new hashing pepper in %s (back it up apart from the database)", where)
    return value.encode()

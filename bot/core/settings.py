"""Settings read from the environment and `.env`, validated once at start-up."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.core.i18n import LOCALES_DIR, SOURCE_LANGUAGE, available_languages, known_language

ENV_PREFIX = "COALITION_"

_TELEGRAM_TOKEN = re.compile(r"^\d{5,12}:[A-Za-z0-9_-]{30,64}$")
_DISCORD_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,40}\.[A-Za-z0-9_-]{4,10}\.[A-Za-z0-9_-]{20,60}$")


class ConfigError(Exception):
    """A setting is wrong; the message names it and says what is wrong, never its value."""


def _id_set(value: Any) -> Any:
    """Accept '1, 2 3' from the environment as a set of ids."""
    if isinstance(value, str):
        return {part for part in re.split(r"[\s,]+", value.strip()) if part}
    return value


class Settings(BaseSettings):
    """Every setting of the bot; see .env.example for the one-line meaning of each."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        hide_input_in_errors=True,
        env_ignore_empty=True,
    )

    telegram_token: SecretStr | None = None
    telegram_base_url: str = Field(
        default="https://api.telegram.org/bot", pattern=r"^https?://[^\s]+$"
    )
    telegram_base_file_url: str = Field(
        default="https://api.telegram.org/file/bot", pattern=r"^https?://[^\s]+$"
    )
    board_interval: float = Field(default=3.0, ge=0.0, le=3600)
    telegram_rate_overall: float = Field(default=30.0, gt=0, le=1000)
    telegram_paid_broadcast: bool = False
    telegram_rate_per_chat: float = Field(default=1.0, gt=0, le=100)
    telegram_rate_per_group_minute: float = Field(default=20.0, gt=0, le=6000)
    discord_sync: str = Field(default="global", pattern=r"^(global|off|\d{15,21})$")
    discord_organizer_role: int | None = None
    discord_home_guild_id: int | None = Field(default=None, ge=1)
    discord_shard_count: int | None = Field(default=None, ge=1, le=10000)
    # The shards this process connects (several processes split them); empty: all.
    discord_shard_ids: Annotated[frozenset[str], NoDecode] = frozenset()
    discord_rate_overall: float = Field(default=45.0, gt=0, le=50)
    telegram_webhook_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    telegram_webhook_secret: SecretStr | None = None
    # Connections Telegram may open to the webhook at once (it allows 1-100; its default is
    # 40). Each update holds one until answered: a busy campaign wants them all.
    telegram_webhook_max_connections: int = Field(default=100, ge=1, le=100)
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8080, ge=0, le=65535)
    # The campaign page (bot/web): its public address, the pledge links it shows, and how
    # many live connections one address may hold.
    web_public_url: str | None = None
    web_telegram_username: str | None = None
    web_discord_invite: str | None = None
    web_streams_per_address: int = Field(default=8, ge=1, le=10_000)
    web_trust_forwarded: bool = False
    # /metrics (Prometheus): on the web server behind a bearer token, and/or on a bind of
    # its own without one (host or port set: 127.0.0.1:9108 by default). Neither: not served.
    metrics_token: SecretStr | None = None
    metrics_host: str | None = None
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    discord_token: SecretStr | None = None
    data_dir: Path = Path("data")
    database_path: Path | None = None
    # PostgreSQL instead of the SQLite file, for several processes on one database.
    database_url: SecretStr | None = None
    pepper: SecretStr | None = None
    pepper_file: Path | None = None
    default_language: str = SOURCE_LANGUAGE  # one of the catalogs in locales_dir
    locales_dir: Path = LOCALES_DIR  # a language is a catalog: <code>/LC_MESSAGES/messages.po
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    campaign_slug: str = Field(default="stop-hate-for-profit", pattern=r"^[a-z0-9-]{1,64}$")
    campaign_timezone: str = "UTC"
    campaign_start: datetime | None = None
    campaign_end: datetime | None = None
    campaign_goal: int = Field(default=10_000, ge=1, le=1_000_000_000)
    campaign_message_ar: str = ""
    campaign_message_fr: str = ""
    campaign_message_en: str = ""
    tally_post_hours: int = Field(default=24, ge=1, le=24 * 7)

    telegram_organizer_ids: Annotated[frozenset[str], NoDecode] = frozenset()
    discord_organizer_ids: Annotated[frozenset[str], NoDecode] = frozenset()

    rate_limit_commands: int = Field(default=10, ge=1, le=1000)
    rate_limit_seconds: float = Field(default=10.0, gt=0, le=3600)

    _validate_ids = field_validator(
        "telegram_organizer_ids", "discord_organizer_ids", "discord_shard_ids", mode="before"
    )(_id_set)

    @field_validator("telegram_organizer_ids", "discord_organizer_ids", "discord_shard_ids")
    @classmethod
    def _numeric_ids(cls, value: frozenset[str]) -> frozenset[str]:
        for item in value:
            if not item.isdigit():
                raise ValueError("must be numbers separated by commas")
        return value

    @field_validator("campaign_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("unknown time zone (use an IANA name such as Europe/Paris)") from None
        return value

    @field_validator("telegram_token")
    @classmethod
    def _telegram_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value() == "":
            return None
        if value is not None and not _TELEGRAM_TOKEN.match(value.get_secret_value()):
            raise ValueError("malformed token (expected the form 123456789:AA… from @BotFather)")
        return value

    @field_validator("discord_token")
    @classmethod
    def _discord_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value() == "":
            return None
        if value is not None and not _DISCORD_TOKEN.match(value.get_secret_value()):
            raise ValueError("malformed token (expected three dot-separated parts)")
        return value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _webhook_secret_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.fullmatch(
            r"[A-Za-z0-9_-]{16,256}", value.get_secret_value()
        ):
            raise ValueError("use 16 to 256 characters among A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("web_host")
    @classmethod
    def _web_host_shape(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9.:%_-]{1,253}", value):
            raise ValueError("use a host name or an address to listen on, such as 127.0.0.1")
        return value

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or value.get_secret_value() == "":
            return None
        if not re.fullmatch(r"[A-Za-z0-9._~+/=-]{16,256}", value.get_secret_value()):
            raise ValueError("use 16 to 256 characters among A-Z, a-z, 0-9 and . _ ~ + / = -")
        return value

    @field_validator("metrics_host")
    @classmethod
    def _metrics_host_shape(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not re.fullmatch(r"[A-Za-z0-9.:%_-]{1,253}", value):
            raise ValueError("use a host name or an address to listen on, such as 127.0.0.1")
        return value

    @field_validator("web_public_url")
    @classmethod
    def _public_url_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.fullmatch(r"https?://[^\s/?#<>\"']+(/[^\s?#<>\"']*)?", value):
            raise ValueError(
                "use the page's public address, such as https://count.example.org/ "
                "(no query, no fragment)"
            )
        return value if value.endswith("/") else value + "/"

    @field_validator("web_telegram_username")
    @classmethod
    def _telegram_username_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        name = value.removeprefix("@")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{4,31}", name):
            raise ValueError(
                "use the bot's Telegram username, such as CoalitionBot (5 to 32 letters, "
                "digits or _)"
            )
        return name

    @field_validator("web_discord_invite")
    @classmethod
    def _discord_invite_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.fullmatch(
            r"https://(discord\.gg|(www\.)?discord(app)?\.com)/[A-Za-z0-9/_?=&%.+-]+", value
        ):
            raise ValueError("use an https://discord.gg/… or https://discord.com/… invite link")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or value.get_secret_value() == "":
            return None
        if not re.fullmatch(r"postgres(ql)?://\S+", value.get_secret_value()):
            raise ValueError("use postgresql://user[:password]@host[:port]/database")
        return value

    @field_validator("pepper")
    @classmethod
    def _pepper_strength(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value() == "":
            return None
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("too short: use at least 32 random characters")
        return value

    @field_validator("pepper_file")
    @classmethod
    def _pepper_file_usable(cls, value: Path | None) -> Path | None:
        if value is None or str(value) == "":
            return None
        if value.is_dir():
            raise ValueError("is a folder: give the path of a file (created if missing)")
        if not value.parent.is_dir():
            raise ValueError("its folder does not exist: create it, the file is made there")
        if value.exists():
            try:
                text = value.read_text(encoding="ascii").strip()
            except (OSError, UnicodeDecodeError):
                raise ValueError("cannot be read as a text file") from None
            if len(text) < 32:
                raise ValueError("too short: the file must hold at least 32 random characters")
        return value

    @model_validator(mode="after")
    def _languages(self) -> Settings:
        languages = available_languages(self.locales_dir)
        unknown = [code for code in languages if not known_language(code)]
        if unknown:
            raise ValueError(f"locales_dir: '{unknown[0]}' is not a language code Babel knows")
        if SOURCE_LANGUAGE not in languages:
            raise ValueError(
                f"locales_dir: no catalog {SOURCE_LANGUAGE}/LC_MESSAGES/messages.po in that folder"
            )
        if self.default_language not in languages:
            *first, last = (f"'{code}'" for code in languages)
            known = f"{', '.join(first)} or {last}" if first else last
            raise ValueError(f"default_language: no catalog for it in locales/: use {known}")
        return self

    @model_validator(mode="after")
    def _window(self) -> Settings:
        zone = ZoneInfo(self.campaign_timezone)
        if self.campaign_start is not None and self.campaign_start.tzinfo is None:
            self.campaign_start = self.campaign_start.replace(tzinfo=zone)
        if self.campaign_end is not None and self.campaign_end.tzinfo is None:
            self.campaign_end = self.campaign_end.replace(tzinfo=zone)
        if (self.campaign_start is None) != (self.campaign_end is None):
            missing = "campaign_end" if self.campaign_end is None else "campaign_start"
            raise ValueError(f"{missing}: set both ends of the freeze window, or neither")
        if (
            self.campaign_start is not None
            and self.campaign_end is not None
            and self.campaign_end <= self.campaign_start
        ):
            raise ValueError("campaign_end: the freeze window ends before it starts")
        return self

    @model_validator(mode="after")
    def _shards(self) -> Settings:
        if not self.discord_shard_ids:
            return self
        if self.discord_shard_count is None:
            raise ValueError(
                "discord_shard_count: set it with COALITION_DISCORD_SHARD_IDS (the total "
                "number of shards the processes split)"
            )
        if any(int(shard) >= self.discord_shard_count for shard in self.discord_shard_ids):
            raise ValueError(
                "discord_shard_ids: shard ids go from 0 to COALITION_DISCORD_SHARD_COUNT - 1"
            )
        return self

    @model_validator(mode="after")
    def _metrics_bind(self) -> Settings:
        if self.metrics_port and self.metrics_port == self.web_port:
            raise ValueError(
                "metrics_port: it is COALITION_WEB_PORT already: give /metrics a port of its "
                "own (such as 9108), or set COALITION_METRICS_TOKEN to serve it there"
            )
        return self

    @model_validator(mode="after")
    def _several_processes(self) -> Settings:
        if self.database_url is None:
            return self
        if self.telegram_webhook_url and self.telegram_webhook_secret is None:
            raise ValueError(
                "telegram_webhook_secret: required with COALITION_DATABASE_URL and a "
                "webhook: every process must check the same secret"
            )
        return self

    @model_validator(mode="after")
    def _shared_pepper(self) -> Settings:
        if self.database_url is not None and self.pepper is None and self.pepper_file is None:
            raise ValueError(
                "pepper: required with COALITION_DATABASE_URL (or COALITION_PEPPER_FILE): "
                "every process must hash ids with the same pepper"
            )
        return self

    @property
    def metrics_bind(self) -> tuple[str, int] | None:
        """Where /metrics is served without a token (its own bind), or None."""
        if self.metrics_host is None and self.metrics_port is None:
            return None
        port = 9108 if self.metrics_port is None else self.metrics_port
        return self.metrics_host or "127.0.0.1", port

    @property
    def db_path(self) -> Path:
        """Where the SQLite database lives."""
        return self.database_path or self.data_dir / "coalition.sqlite3"

    def campaign_message(self, language: str) -> str:
        """The configured message to post in one language, or '' for the built-in one."""
        return str(getattr(self, f"campaign_message_{language}", "") or "")

    def organizer_ids(self, platform: str) -> frozenset[str]:
        """The configured organizer user ids of one platform."""
        return frozenset(getattr(self, f"{platform}_organizer_ids", frozenset()))


def describe(error: ValidationError) -> str:
    """One line naming the first wrong setting and what is wrong with it, without its value."""
    first = error.errors(include_input=False, include_url=False)[0]
    loc = [str(part) for part in first.get("loc", ()) if isinstance(part, str)]
    message = str(first.get("msg", "invalid"))
    message = message.removeprefix("Value error, ")
    name = loc[0] if loc else ""
    if not name and ":" in message:
        name, message = (part.strip() for part in message.split(":", 1))
    setting = f"{ENV_PREFIX}{name.upper()}" if name else "configuration"
    return f"{setting}: {message}"


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the settings, raising ConfigError with one clear line."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise ConfigError(describe(error)) from None

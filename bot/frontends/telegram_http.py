"""How python-telegram-bot reaches the Bot API here: one aiohttp session.

PTB's default client (httpx) walks its whole connection pool on every request: with the 256
connections a busy bot needs, answering a button press by request cost the event loop more
than handling the press itself, so a long-polling bot fell behind at a few hundred presses a
second. aiohttp (already the bot's web server) takes a connection from its pool in constant
time. PTB supports this through its `BaseRequest` interface.

A button press carries the whole message the button is on (its text, entities, keyboard):
the bot reads only which chat and which message, so the rest is dropped before PTB builds
its objects from it (`slim_update`), which was most of the cost of parsing a press.

The outbox's messages go out through `post_form`: the same request and the same errors as
`Bot.send_message`, without building a `Message` from every answer, which the outbox never
reads (a third of the bot's own cost of a send).

A timed-out request says whether it may have reached Telegram: its cause is `NotSent` when
it never got a connection (the pool was full, or connecting timed out), so the caller can
send it again; any other timeout happened after the request was written.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

# PTB's own encoding of one parameter, as its Bot methods use it (PTB is pinned).
from telegram.request._requestparameter import RequestParameter

log = logging.getLogger(__name__)

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


# What a pressed button's message keeps: where it is. Its content is never read.
PRESSED_MESSAGE_KEEPS = frozenset({"message_id", "date", "chat", "message_thread_id"})


def slim_update(update: Any) -> Any:
    """An update as Telegram sent it (JSON), minus the content of a pressed button's
    message; anything else is returned as it is."""
    if type(update) is dict:
        query = update.get("callback_query")
        if type(query) is dict:
            message = query.get("message")
            if type(message) is dict:
                query["message"] = {k: v for k, v in message.items() if k in PRESSED_MESSAGE_KEEPS}
    return update


def form(fields: dict[str, Any]) -> RequestData:
    """Bot API parameters encoded as PTB's Bot methods encode them (None is left out)."""
    parameters = [RequestParameter.from_input(k, v) for k, v in fields.items() if v is not None]
    return RequestData(parameters)


class NotSent(Exception):
    """The request never left: no connection could be had in time."""


class AiohttpRequest(BaseRequest):
    """A PTB request backend on one aiohttp ClientSession with a bounded connection pool."""

    def __init__(
        self,
        connection_pool_size: int = 256,
        read_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._session: aiohttp.ClientSession | None = None

    def parse_json_payload(self, payload: bytes) -> Any:
        """PTB's JSON decoding, with the updates of getUpdates slimmed (see `slim_update`)."""
        data = super().parse_json_payload(payload)
        result = data.get("result") if type(data) is dict else None
        if type(result) is list:
            for update in result:
                slim_update(update)
        return data

    async def post_form(self, base_url: str, method: str, fields: dict[str, Any]) -> Any:
        """Call a Bot API method; its raw JSON result. Errors are PTB's (RetryAfter,
        Forbidden, BadRequest, TimedOut...), as `Bot`'s methods raise them."""
        return await self.post(f"{base_url}/{method}", form(fields))

    @property
    def read_timeout(self) -> float | None:
        """The read timeout used when a call gives none."""
        return self._read_timeout

    async def initialize(self) -> None:
        """Open the session (idempotent)."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._pool_size, limit_per_host=0)
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": self.USER_AGENT}
            )

    async def shutdown(self) -> None:
        """Close the session and its connections (idempotent)."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """One HTTP request to the Bot API: its status and body."""
        if self._session is None or self._session.closed:
            raise RuntimeError("AiohttpRequest is not initialized")
        files = request_data.multipart_data if request_data else None
        read = self._read_timeout if isinstance(read_timeout, DefaultValue) else read_timeout
        connect = (
            self._connect_timeout if isinstance(connect_timeout, DefaultValue) else connect_timeout
        )
        pool = self._pool_timeout if isinstance(pool_timeout, DefaultValue) else pool_timeout
        # aiohttp's `connect` covers waiting for a pooled connection and opening one;
        # `sock_read` the wait for the answer once the request is written. aiohttp has no
        # write timeout: the bot's requests are a few kilobytes (write_timeout is accepted
        # for PTB's interface and not used).
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=None if pool is None or connect is None else pool + connect,
            sock_connect=connect,
            sock_read=read,
        )
        body: Any = None
        headers: dict[str, str] | None = None
        if files:
            form = aiohttp.FormData()
            for name, value in (request_data.json_parameters if request_data else {}).items():
                form.add_field(name, value)
            for name, (filename, content, mimetype) in files.items():
                form.add_field(name, content, filename=filename, content_type=mimetype)
            body = form
        elif request_data is not None and request_data.json_parameters:
            # Form-encoded, as PTB's own client sends it (urlencode is much cheaper than
            # aiohttp's FormData for a few short fields).
            body = urlencode(request_data.json_parameters).encode()
            headers = FORM
        try:
            async with self._session.request(
                method, url, data=body, headers=headers, timeout=timeout
            ) as response:
                return response.status, await response.read()
        except aiohttp.ConnectionTimeoutError as error:  # no connection in time: never sent
            raise TimedOut("Timed out before the request was sent") from NotSent(str(error))
        except (TimeoutError, aiohttp.ServerTimeoutError) as error:
            raise TimedOut from error
        except aiohttp.ClientError as error:
            raise NetworkError(f"aiohttp.{type(error).__name__}: {error}") from error

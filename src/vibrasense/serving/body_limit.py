"""The request body's limits, enforced while it arrives: its size (serving.max_upload_mb) and its time
(serving.body_timeout_s), and a client that leaves half-way.

A FastAPI dependency cannot protect memory here: FastAPI reads the body (and parses a multipart form,
spooling its files) before any dependency runs. FastAPI's own ``max_body_size`` does stop early, but it
answers a declared oversize ``Content-Length`` with a plain-text 413 that replaces the app's response. So
this small pure-ASGI middleware refuses a declared size at once and counts streamed bytes as they are
received, answering a 413 Problem that names the setting.

uvicorn has no body timeout: a client sending one byte a minute holds a worker's memory and a connection
for ever. Here the whole body must arrive within ``body_timeout_s`` of the request's headers, else a 408
Problem answers and the connection is closed. A client that disconnects before its body is complete is
nobody's error: it is answered (to no one) with nginx's 499, logged in one line and counted under that
status, never as a 500 with a traceback.
"""

from __future__ import annotations

import asyncio
import time

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vibrasense.serving.problems import CLIENT_CLOSED_REQUEST, problem_response


class BodyTooLarge(HTTPException):
    """The request body is above serving.max_upload_mb."""

    field = "body"

    def __init__(self, size: int, limit_mb: float) -> None:
        super().__init__(
            413,
            f"request body of {size / 1048576:.1f} MB or more is above serving.max_upload_mb={limit_mb:g}; "
            "send a shorter or compressed (FLAC) recording",
        )


class BodyTimeout(HTTPException):
    """The request body did not arrive within serving.body_timeout_s; the connection is closed after the 408."""

    field = "body"

    def __init__(self, received: int, limit_s: float) -> None:
        super().__init__(
            408,
            f"the request body did not arrive within serving.body_timeout_s={limit_s:g} ({received} bytes came); "
            "send it faster, or a shorter or compressed (FLAC) recording",
            headers={"Connection": "close"},
        )


class ClientClosed(HTTPException):
    """The client disconnected before its request body was complete: nobody reads the answer."""

    def __init__(self, received: int) -> None:
        super().__init__(
            CLIENT_CLOSED_REQUEST, f"client closed the connection after {received} bytes of the request body"
        )


class BodySizeLimit:
    """Refuses bodies above ``max_upload_mb`` (413) or slower than ``body_timeout_s`` (408); notes clients gone."""

    def __init__(self, app: ASGIApp, max_upload_mb: float, body_timeout_s: float | None = None) -> None:
        self.app = app
        self.max_upload_mb = max_upload_mb
        self.max_bytes = int(max_upload_mb * 1024 * 1024)
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(BodyTooLarge(int(declared), self.max_upload_mb), scope, receive, send)
            return
        deadline = None if self.body_timeout_s is None else time.monotonic() + self.body_timeout_s
        received = 0
        body_complete = False
        response_started = False

        async def guarded_receive() -> Message:
            nonlocal received, body_complete
            if body_complete:  # what follows the body is the wait for a disconnect: no deadline on that
                return await receive()
            try:
                if deadline is None:
                    message = await receive()
                else:
                    message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.0))
            except TimeoutError:
                raise BodyTimeout(received, self.body_timeout_s or 0.0) from None
            if message["type"] == "http.disconnect":
                raise ClientClosed(received)
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(received, self.max_upload_mb)
                body_complete = not message.get("more_body", False)
            return message

        async def noting_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, guarded_receive, noting_send)
        except ClientClosed:  # raised where no exception handler answered it
            if not response_started:
                await send({"type": "http.response.start", "status": CLIENT_CLOSED_REQUEST, "headers": []})
                await send({"type": "http.response.body", "body": b""})
        except (BodyTooLarge, BodyTimeout) as error:
            if response_started:
                raise
            await self._refuse(error, scope, receive, send)

    @staticmethod
    async def _refuse(error: HTTPException, scope: Scope, receive: Receive, send: Send) -> None:
        phrase = "Content Too Large" if error.status_code == 413 else "Request Timeout"
        response = problem_response(Request(scope), error.status_code, phrase, "body", error.detail)
        response.headers.update(error.headers or {})
        await response(scope, receive, send)

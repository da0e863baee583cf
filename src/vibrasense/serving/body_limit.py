"""The request body limit (serving.max_upload_mb), enforced while the body arrives.

A FastAPI dependency cannot protect memory here: FastAPI reads the body (and parses a multipart form,
spooling its files) before any dependency runs. FastAPI's own ``max_body_size`` does stop early, but it
answers a declared oversize ``Content-Length`` with a plain-text 413 that replaces the app's response. So
this small pure-ASGI middleware refuses a declared size at once and counts streamed bytes as they are
received, answering a 413 Problem that names the setting.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vibrasense.serving.problems import problem_response


class BodyTooLarge(HTTPException):
    """The request body is above serving.max_upload_mb."""

    field = "body"

    def __init__(self, size: int, limit_mb: float) -> None:
        super().__init__(
            413,
            f"request body of {size / 1048576:.1f} MB or more is above serving.max_upload_mb={limit_mb:g}; "
            "send a shorter or compressed (FLAC) recording",
        )


class BodySizeLimit:
    """Refuses request bodies above ``max_upload_mb``, declared or streamed, with a 413 Problem."""

    def __init__(self, app: ASGIApp, max_upload_mb: float) -> None:
        self.app = app
        self.max_upload_mb = max_upload_mb
        self.max_bytes = int(max_upload_mb * 1024 * 1024)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(BodyTooLarge(int(declared), self.max_upload_mb), scope, receive, send)
            return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(received, self.max_upload_mb)
            return message

        async def noting_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, noting_send)
        except BodyTooLarge as error:  # raised where no exception handler answered it
            if response_started:
                raise
            await self._refuse(error, scope, receive, send)

    @staticmethod
    async def _refuse(error: BodyTooLarge, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(Request(scope), 413, "Content Too Large", BodyTooLarge.field, error.detail)
        await response(scope, receive, send)

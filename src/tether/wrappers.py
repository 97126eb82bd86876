"""The request and response objects: Werkzeug's, plus what an app needs to know
about routing, limits from config, and JSON errors."""

from __future__ import annotations

import typing as t
from functools import lru_cache
from http import HTTPStatus

from werkzeug.datastructures import EnvironHeaders, Headers, MultiDict
from werkzeug.exceptions import BadRequest, HTTPException
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.sansio.request import Request as _SansIORequest
from werkzeug.utils import cached_property, get_content_type
from werkzeug.wrappers import Request as _Request
from werkzeug.wrappers import Response as _Response

from . import json as _json
from .globals import _cv_app

if t.TYPE_CHECKING:
    from werkzeug.routing import Rule

__all__ = ["Request", "Response"]


_ROUTING = frozenset({"url_rule", "view_args", "routing_exception"})


class Request(_Request):
    """The current request.

    ``url_rule``, ``view_args`` and ``routing_exception`` are computed on first
    access (through ``__getattr__``, so afterwards they are plain attributes):
    a request context that never routes, such as one pushed to build URLs,
    never matches its URL.
    """

    json_module: t.Any = _json
    url_rule: Rule | None
    view_args: dict[str, t.Any] | None
    routing_exception: HTTPException | None

    @cached_property
    def args(self) -> MultiDict[str, str]:  # type: ignore[override]
        """The parsed query string.

        One without ``%`` or ``+`` is split directly, which gives exactly what
        ``parse_qsl`` gives, and the MultiDict is filled with its documented
        inner form (a list of values per key) instead of pair by pair: for
        ``q=x``, creating a request and reading ``args`` takes 2.9 µs instead of
        4.3 µs (bench/micro_bench.py).
        """
        query = self.query_string.decode()
        if "%" in query or "+" in query:
            return super().args
        values: dict[str, list[str]] = {}
        for part in query.split("&"):
            if part:
                key, _, value = part.partition("=")
                if key in values:
                    values[key].append(value)
                else:
                    values[key] = [value]
        args = self.parameter_storage_class()
        dict.update(args, values)
        return args

    @classmethod
    def from_parts(
        cls,
        environ: dict[str, t.Any],
        *,
        method: str,
        scheme: str,
        server: tuple[str, int | None] | None,
        root_path: str,
        path: str,
        query_string: bytes,
        remote_addr: str | None,
    ) -> Request:
        """A request from values an adapter already has parsed (an ASGI scope),
        beside the environ that ``request.environ`` shows. Werkzeug's constructor
        would parse them again from the environ (0.7 µs of the 1.6 µs it takes)."""
        request = cls.__new__(cls)
        _SansIORequest.__init__(
            request,
            method=method,
            scheme=scheme,
            server=server,
            root_path=root_path,
            path=path,
            query_string=query_string,
            headers=EnvironHeaders(environ),
            remote_addr=remote_addr,
        )
        request.environ = environ
        request.shallow = False
        environ["werkzeug.request"] = request
        return request

    def __getattr__(self, name: str) -> t.Any:
        if name not in _ROUTING:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        app = self.__dict__.pop("_tether_app", None)
        if app is None:
            return None
        self.route(app)
        return self.__dict__[name]

    def route(self, app: t.Any) -> None:
        """Match this request's URL with ``app`` and set ``url_rule`` and
        ``view_args``, or ``routing_exception`` (a 404, 405 or redirect)."""
        self.url_rule = self.view_args = self.routing_exception = None
        try:
            self.url_rule, self.view_args = app.match_request(self)
        except HTTPException as e:
            self.routing_exception = e

    def _config(self, key: str, default: t.Any) -> t.Any:
        ctx = _cv_app.get(None)
        return ctx.app.config[key] if ctx is not None else default

    @property
    def max_content_length(self) -> int | None:  # type: ignore[override]
        """``MAX_CONTENT_LENGTH`` of the current app: a larger body is refused with 413."""
        return self._config("MAX_CONTENT_LENGTH", None)

    @property
    def max_form_memory_size(self) -> int | None:  # type: ignore[override]
        return self._config("MAX_FORM_MEMORY_SIZE", 500_000)

    @property
    def max_form_parts(self) -> int | None:  # type: ignore[override]
        return self._config("MAX_FORM_PARTS", 1_000)

    @property
    def last_event_id(self) -> str | None:
        """The ``Last-Event-ID`` an EventSource sends when it reconnects."""
        return self.headers.get("Last-Event-ID")

    async def iter_body(self) -> t.AsyncIterator[bytes]:
        """The body's chunks as they arrive, for an async view marked with
        ``@tether.stream_body`` (under WSGI: read from the input stream)."""
        body = self.environ.get("wsgi.input")
        chunks = getattr(body, "chunks", None)
        if chunks is not None:
            async for chunk in chunks():
                yield chunk
            return
        stream = self.stream
        while chunk := stream.read(65536):
            yield chunk

    @property
    def is_websocket(self) -> bool:
        """Whether this is the handshake of a WebSocket connection."""
        scope = self.environ.get("asgi.scope")
        return scope is not None and scope["type"] == "websocket"

    @property
    def endpoint(self) -> str | None:
        return self.url_rule.endpoint if self.url_rule is not None else None

    @property
    def blueprint(self) -> str | None:
        """The full name of the blueprint of the matched endpoint."""
        endpoint = self.endpoint
        if endpoint is not None and "." in endpoint:
            return endpoint.rpartition(".")[0]
        return None

    @property
    def blueprints(self) -> list[str]:
        """The matched blueprint and its parents, innermost first."""
        name = self.blueprint
        if name is None:
            return []
        parts = name.split(".")
        return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]

    def on_json_loading_failed(self, e: ValueError | None) -> t.Any:
        try:
            return super().on_json_loading_failed(e)
        except BadRequest as error:
            if e is not None:
                error.description = f"Failed to decode JSON object: {e}"
            raise


_STATUS_LINES = {code: f"{code} {name.upper()}" for code, name in HTTP_STATUS_CODES.items()}


@lru_cache(maxsize=64)
def _content_type(mimetype: str) -> str:
    return get_content_type(mimetype, "utf-8")


class Response(_Response):
    """A response; HTML by default, as in Flask.

    Building one the common way (a body, maybe an int status and a mimetype, no
    headers) skips Werkzeug's generic constructor, which validates each header
    and raises and catches a ``KeyError`` looking for ``Content-Type``: 0.9 µs
    instead of 4 µs (bench/micro_bench.py). The result is identical
    (tests/test_wrappers.py compares both).
    """

    default_mimetype = "text/html"
    json_module = _json
    autocorrect_location_header = False

    def __init__(
        self,
        response: t.Iterable[bytes] | bytes | t.Iterable[str] | str | None = None,
        status: int | str | HTTPStatus | None = None,
        headers: t.Any = None,
        mimetype: str | None = None,
        content_type: str | None = None,
        direct_passthrough: bool = False,
    ) -> None:
        kind = type(response)
        if (
            (kind is str or kind is bytes)
            and headers is None
            and content_type is None
            and (status is None or type(status) is int)
            and self.automatically_set_content_length
            and (status_line := _STATUS_LINES.get(status or self.default_status)) is not None
        ):
            body = response.encode() if kind is str else response  # type: ignore[union-attr]
            self.headers = Headers.__new__(Headers)
            self.headers._list = [  # type: ignore[attr-defined]
                ("Content-Type", _content_type(mimetype or self.default_mimetype)),
                ("Content-Length", str(len(body))),
            ]
            self._status = status_line
            self._status_code = status or self.default_status
            self.direct_passthrough = direct_passthrough
            self._on_close = []
            self.response = [body]
            return
        super().__init__(response, status, headers, mimetype, content_type, direct_passthrough)

    @property
    def max_cookie_size(self) -> int:  # type: ignore[override]
        ctx = _cv_app.get(None)
        if ctx is not None:
            return ctx.app.config["MAX_COOKIE_SIZE"]
        return super().max_cookie_size

"""The request and response objects: Werkzeug's, plus what an app needs to know
about routing, limits from config, and JSON errors."""

from __future__ import annotations

import io
import re
import typing as t
from functools import cache, lru_cache
from http import HTTPStatus
from urllib.parse import parse_qsl

from werkzeug.datastructures import EnvironHeaders, Headers, MultiDict
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge
from werkzeug.http import HTTP_STATUS_CODES, parse_options_header
from werkzeug.sansio.utils import get_content_length
from werkzeug.utils import cached_property, get_content_type
from werkzeug.wrappers import Request as _Request
from werkzeug.wrappers import Response as _Response

from ..contexts.ctx import _cv_app
from . import json as _json
from .debughelpers import attach_enctype_error_multidict
from .input_stream import CheckedStream
from .werkzeug_private import PARSED_CONTENT_TYPE, fill_multidict, set_plain_status, wsgi_decoded

if t.TYPE_CHECKING:
    from werkzeug.routing import Rule

__all__ = ["Body", "Request", "RequestSource", "Response", "Router"]

#: What a response body may be: text or bytes, or an iterable (sync or async) of them.
Body = t.Union[str, bytes, bytearray, t.Iterable[str], t.Iterable[bytes], t.AsyncIterable[str], t.AsyncIterable[bytes]]


class Router(t.Protocol):
    """What matches a request's URL (the application)."""

    def match_request(self, request: Request, /) -> tuple[Rule, dict[str, t.Any]]: ...


class RequestSource(t.Protocol):
    """Where a request made from parts the serving layer has parsed (an ASGI
    scope: ``tether.serving.asgi_request``) gets what it makes only on first
    use: most requests never need their environ or their headers."""

    #: Whether the client sent a Cookie header.
    has_cookie: bool
    #: Whether the server the request came through can hold a WebSocket.
    websockets: bool

    def environ(self) -> dict[str, t.Any]:
        """The request's WSGI-style environ."""

    def headers(self) -> Headers:
        """The request's headers, as ``request.headers`` gives them under WSGI."""

    def header(self, environ_key: str) -> str | None:
        """One header, by its environ key (``CONTENT_TYPE``): what ``headers()``
        would give for it, without making them."""

    def extra(self, key: str) -> t.Any:
        """An environ value given beside the parts (a test client's), without
        building the environ; ``None`` if there is none."""

    def body_chunks(self) -> t.AsyncIterator[bytes] | None:
        """The body's chunks as they arrive, for async code; ``None`` when it
        is read as a stream only."""


_ROUTING = frozenset({"url_rule", "view_args", "routing_exception"})
#: A content type with no parameters: what Werkzeug's parser returns as it is.
_PLAIN_MIMETYPE = re.compile(r"(?:[A-Za-z0-9!#$%&'*+.^_`|~-]+/[A-Za-z0-9!#$%&'*+.^_`|~-]+)?")


@cache
def _split_blueprint_path(name: str) -> list[str]:
    """A blueprint's full dotted name and each of its parents' names, innermost
    first (``"a.b"`` -> ``["a.b", "a"]``); cached, so callers must not change it."""
    parts = name.split(".")
    return [".".join(parts[:end]) for end in range(len(parts), 0, -1)]


class _ConfigLimit(property):
    """A request limit: the one set on the request itself (kept as Flask keeps
    it, in ``_max_content_length`` & co.), else the current app's config value,
    else ``default`` (outside an app context). A property with a setter, as
    Flask's are."""

    def __init__(self, key: str, default: int | None) -> None:
        super().__init__(self._read, self._write)
        self.key = key
        self.default = default

    def __set_name__(self, owner: type, name: str) -> None:
        self.attribute = f"_{name}"

    def _read(self, request: t.Any) -> t.Any:
        own = request.__dict__.get(self.attribute)
        if own is not None:
            return own
        ctx = _cv_app.get(None)
        return ctx.app.config[self.key] if ctx is not None else self.default

    def _write(self, request: t.Any, value: int | None) -> None:
        request.__dict__[self.attribute] = value


class Request(_Request):
    """The current request.

    ``url_rule``, ``view_args`` and ``routing_exception`` are computed on first
    access (through ``__getattr__``, so afterwards they are plain attributes):
    a request context that never routes, such as one pushed to build URLs,
    never matches its URL.
    """

    #: The app that will match this request's URL when routing data is first read.
    _router: Router | None = None

    json_module: t.Any = _json
    url_rule: Rule | None
    view_args: dict[str, t.Any] | None
    routing_exception: HTTPException | None

    def __init__(self, environ: dict[str, t.Any], populate_request: bool = True, shallow: bool = False) -> None:
        """Werkzeug's constructor written out: the same fields, normalized the
        same way, without its keyword-argument hop through the sans-IO base,
        with ASCII paths (nearly all) taken as they are, and ``headers`` made
        on first use. 0.75 µs against Werkzeug's 1.6 (bench/micro_bench.py);
        tests/test_wrappers.py checks it against Werkzeug's on many environs."""
        self.environ = environ
        self.shallow = shallow
        if populate_request and not shallow:
            environ["werkzeug.request"] = self
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        self.scheme = environ.get("wsgi.url_scheme", "http")
        name = environ.get("SERVER_NAME")
        if name is None:
            self.server = None
        else:
            try:
                self.server = (name, int(environ.get("SERVER_PORT")))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                self.server = (name, None)
        root_path = environ.get("SCRIPT_NAME") or ""
        self.root_path = (root_path if root_path.isascii() else wsgi_decoded(root_path)).rstrip("/")
        path = environ.get("PATH_INFO") or ""
        self.path = "/" + (path if path.isascii() else wsgi_decoded(path)).lstrip("/")
        self.query_string = environ.get("QUERY_STRING", "").encode("latin1")
        self.remote_addr = environ.get("REMOTE_ADDR")
        # headers: made on first use (__getattr__), as most requests never read them.

    @cached_property
    def args(self) -> MultiDict[str, str]:
        """The parsed query string.

        An ASCII one without ``%`` or ``+`` is split directly, which gives
        exactly what ``parse_qsl`` gives, and the MultiDict is filled with its
        documented inner form (a list of values per key) instead of pair by
        pair, which is faster (bench/micro_bench.py measures both). Anything
        else goes to Werkzeug, which decodes bad bytes as replacement characters.
        """
        raw = self.query_string
        if not raw.isascii() or b"%" in raw or b"+" in raw:
            try:
                return super().args
            except UnicodeDecodeError:
                # Raw bytes that are not UTF-8 (a client should have percent-encoded
                # them) fail in Werkzeug, a 500: read them as replacement characters.
                query = raw.decode("utf-8", "replace")
                return self.parameter_storage_class(parse_qsl(query, keep_blank_values=True))
        query = raw.decode("ascii")
        values: dict[str, list[str]] = {}
        for part in query.split("&"):
            if part:
                key, _, value = part.partition("=")
                if key in values:
                    values[key].append(value)
                else:
                    values[key] = [value]
        args = self.parameter_storage_class()
        fill_multidict(args, values)
        return args

    #: Whether this is a WebSocket handshake.
    is_websocket = False
    #: What makes ``environ`` and the headers on first use (a request made by :meth:`from_source`).
    _source: RequestSource | None = None

    @classmethod
    def from_source(
        cls,
        source: RequestSource,
        method: str,
        scheme: str,
        server: tuple[str, int | None] | None,
        root_path: str,
        path: str,
        query_string: bytes,
        remote_addr: str | None,
        body: t.Any = None,
        is_websocket: bool = False,
    ) -> Request:
        """A request from values the serving layer has already parsed, with
        ``source`` for what is made on first use (``environ``, the headers).
        ``body``, when given, is ``request.stream`` itself: a stream that
        enforces ``MAX_CONTENT_LENGTH`` on its own, which spares Werkzeug's
        wrapping of it.
        """
        request = cls.__new__(cls)
        # The fields Werkzeug's sansio constructor sets, normalized the same way.
        request.method = method.upper()
        request.scheme = scheme
        request.server = server
        request.root_path = root_path.rstrip("/")
        request.path = "/" + path.lstrip("/")
        request.query_string = query_string
        request.remote_addr = remote_addr
        request.shallow = False
        request._source = source
        if body is not None:
            request.stream = body
        if is_websocket:
            request.is_websocket = True
        return request

    @property
    def websocket_capable(self) -> bool:
        """Whether the server this request came through can hold a WebSocket:
        a plain HTTP request to a WebSocket route is told what to change."""
        source = self._source
        return source is not None and source.websockets

    def environ_value(self, key: str) -> t.Any:
        """``environ.get(key)``, without building an environ not built yet."""
        environ = self.__dict__.get("environ")
        if environ is not None:
            return environ.get(key)
        source = self._source
        return source.extra(key) if source is not None else None

    def sends_cookies(self) -> bool:
        """Whether the client sent a Cookie header (cheap, no parsing)."""
        environ = self.__dict__.get("environ")
        if environ is not None:
            return "HTTP_COOKIE" in environ
        source = self._source
        return source is not None and source.has_cookie

    def _header(self, name: str, environ_key: str) -> str | None:
        """A request header, from the environ or the request's source while the
        headers are not made: most requests never make them, and reading one
        value is cheaper."""
        if "headers" not in self.__dict__:
            if "environ" in self.__dict__:
                return t.cast("str | None", self.environ.get(environ_key))
            source = self._source
            if source is not None:
                return source.header(environ_key)
        return self.headers.get(name)

    @cached_property
    def content_length(self) -> int | None:
        """Werkzeug's, from :meth:`_header` (checked against Werkzeug's in tests/test_wrappers.py)."""
        return get_content_length(self._header("Content-Length", "CONTENT_LENGTH"), self._header("Transfer-Encoding", "HTTP_TRANSFER_ENCODING"))

    @property
    def mimetype(self) -> str:
        """Werkzeug's. A plain ``type/subtype`` (the usual ``application/json``) is
        taken as it is, without Werkzeug's parser of parameters (checked against
        it in tests/test_wrappers.py)."""
        parsed = self.__dict__.get(PARSED_CONTENT_TYPE)
        if parsed is None:
            value = self._header("Content-Type", "CONTENT_TYPE") or ""
            parsed = (value, {}) if _PLAIN_MIMETYPE.fullmatch(value) else parse_options_header(value)
            self.__dict__[PARSED_CONTENT_TYPE] = parsed
        return parsed[0].lower()

    def __getattr__(self, name: str) -> t.Any:
        if name not in _ROUTING:
            if name == "headers":
                source = self._source
                headers = self.headers = source.headers() if source is not None else EnvironHeaders(self.environ)
                return headers
            if name == "environ":
                source = self._source
                if source is not None:
                    environ = self.environ = source.environ()
                    environ["werkzeug.request"] = self
                    return environ
            # Werkzeug probes its caches with hasattr(): keep a miss cheap.
            raise AttributeError(name)
        router = self._router
        if router is None:
            return None
        self.match_url(router)
        return self.__dict__[name]

    def match_url_later(self, app: Router) -> None:
        """Match the URL with ``app`` when ``url_rule`` & co. are first read."""
        self._router = app

    def match_url_pending(self) -> None:
        """Match the URL now, if :meth:`match_url_later` asked for it and it has not been."""
        router = self._router
        if router is not None:
            self.match_url(router)

    def match_url(self, app: Router) -> None:
        """Match this request's URL with ``app`` and set ``url_rule`` and
        ``view_args``, or ``routing_exception`` (a 404, 405 or redirect)."""
        self._router = None
        self.url_rule = self.view_args = self.routing_exception = None
        try:
            self.url_rule, self.view_args = app.match_request(self)
        except HTTPException as e:
            self.routing_exception = e

    def _load_form_data(self) -> None:
        super()._load_form_data()
        ctx = _cv_app.get(None)
        if ctx is not None and ctx.app.config["DEBUG"] and self.mimetype != "multipart/form-data" and not self.files:
            attach_enctype_error_multidict(self)

    @cached_property
    def stream(self) -> t.IO[bytes]:
        """The body as the WSGI server gives it, read only up to its declared
        length, never past ``MAX_CONTENT_LENGTH`` (413), and never shorter than
        declared (400): see ``tether.application.input_stream``."""
        length = self.content_length
        limit = self.max_content_length
        if length is not None and limit is not None and length > limit:
            raise RequestEntityTooLarge()
        if length is None and "wsgi.input_terminated" not in self.environ:
            # Werkzeug's safe fallback: such a server's input may never end.
            return io.BytesIO()
        return t.cast(t.IO[bytes], CheckedStream(self.environ["wsgi.input"], length, limit))

    _max_content_length: int | None = None
    _max_form_memory_size: int | None = None
    _max_form_parts: int | None = None
    max_content_length = _ConfigLimit("MAX_CONTENT_LENGTH", None)
    """``MAX_CONTENT_LENGTH`` of the current app (or this request's own, when
    set): a larger body is refused with 413."""
    max_form_memory_size = _ConfigLimit("MAX_FORM_MEMORY_SIZE", 500_000)
    max_form_parts = _ConfigLimit("MAX_FORM_PARTS", 1_000)

    @property
    def last_event_id(self) -> str | None:
        """The ``Last-Event-ID`` an EventSource sends when it reconnects."""
        return self.headers.get("Last-Event-ID")

    async def iter_body(self) -> t.AsyncIterator[bytes]:
        """The body's chunks as they arrive, for an async view marked with
        ``@tether.stream_body`` (under WSGI: read from the input stream)."""
        chunks = self._source.body_chunks() if self._source is not None else None
        if chunks is not None:
            async for chunk in chunks:
                yield chunk
            return
        stream = self.stream
        while chunk := stream.read(65536):
            yield chunk

    def close(self) -> None:
        """Close the uploaded files, if the form was parsed (most requests never do)."""
        if "files" in self.__dict__:
            super().close()

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
        return [] if name is None else _split_blueprint_path(name)

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


def _plain_headers(headers: dict[t.Any, t.Any], default_mimetype: str) -> list[tuple[str, str]] | None:
    """The header list Werkzeug's constructor makes from ``headers``, a dict of
    plain strings, with the default ``Content-Type`` added when it has none;
    ``None`` when it holds anything else (its checks and errors then apply)."""
    items = list(headers.items())
    has_type = False
    for key, value in items:
        if type(key) is not str or type(value) is not str or "\n" in value or "\r" in value:
            return None
        lowered = key.lower()
        if lowered == "content-type":
            if has_type:
                return None
            has_type = True
        elif lowered == "content-length":
            return None
    if not has_type:
        items.append(("Content-Type", _content_type(default_mimetype)))
    return items


class Response(_Response):
    """A response; HTML by default, as in Flask.

    Building one the common way (a text or bytes body, maybe an int status, and
    a mimetype or a dict of plain headers) skips Werkzeug's generic
    constructor, which validates each header one call at a time and raises and
    catches a ``KeyError`` looking for ``Content-Type``: 1.1 µs against 4.8 with
    a ``{"Content-Type": ...}`` dict (bench/micro_bench.py). The result is identical
    (tests/test_wrappers.py compares both with Hypothesis).
    """

    default_mimetype = "text/html"
    json_module = _json
    autocorrect_location_header = False
    #: Whether a streamed body is produced up to its first chunk before the
    #: status is sent (``tether.application.streaming``).
    first_chunk_before_status = True
    #: The longest one send of a streamed body may hang before the stream is
    #: ended (seconds; ``None``: no limit). An ``EventStream`` sets it.
    send_timeout: float | None = None

    def __init__(
        self,
        response: Body | None = None,
        status: int | str | HTTPStatus | None = None,
        headers: t.Mapping[str, str | t.Iterable[str]] | t.Iterable[tuple[str, str]] | None = None,
        mimetype: str | None = None,
        content_type: str | None = None,
        direct_passthrough: bool = False,
    ) -> None:
        kind = type(response)
        if (
            (kind is str or kind is bytes)
            and content_type is None
            and (status is None or type(status) is int)
            and self.automatically_set_content_length
            and (status_line := _STATUS_LINES.get(status or self.default_status)) is not None
            and (headers is None or (mimetype is None and type(headers) is dict))
        ):
            items = (
                [("Content-Type", _content_type(mimetype or self.default_mimetype))]
                if headers is None
                else _plain_headers(headers, self.default_mimetype)
            )
            if items is None:  # unusual headers: Werkzeug's constructor decides
                super().__init__(t.cast(t.Any, response), status, headers, mimetype, content_type, direct_passthrough)
                return
            body = response.encode() if isinstance(response, str) else response
            assert isinstance(body, bytes)
            items.append(("Content-Length", str(len(body))))
            set_plain_status(self, status_line, status or self.default_status, items)
            self.direct_passthrough = direct_passthrough
            self.response = [body]
            return
        # Werkzeug iterates any iterable body, and tether's adapters async ones too.
        super().__init__(t.cast(t.Any, response), status, headers, mimetype, content_type, direct_passthrough)

    def produces_first_chunk_early(self) -> bool:
        """Whether the pipeline produces this body's first chunk before sending
        the status: a streamed body, unless it opted out (``first_chunk_before_status``) or is
        a file passed straight to the server (``direct_passthrough``)."""
        return self.first_chunk_before_status and not self.direct_passthrough and self.is_streamed

    @property
    def max_cookie_size(self) -> int:  # type: ignore[override]
        ctx = _cv_app.get(None)
        if ctx is not None:
            return ctx.app.config["MAX_COOKIE_SIZE"]
        return super().max_cookie_size

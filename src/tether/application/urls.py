"""URLs: matching a request to a rule, and building URLs for endpoints."""

from __future__ import annotations

import sys
import typing as t
from itertools import chain
from urllib.parse import quote

from werkzeug.exceptions import BadRequest
from werkzeug.routing import BuildError, MapAdapter, RequestRedirect, Rule, WebsocketMismatch
from werkzeug.urls import quote as _url_quote
from werkzeug.utils import redirect as _redirect

from ..contexts.ctx import _cv_app, _cv_request
from .base import AppBase
from .debughelpers import FormDataRoutingRedirect
from .routing import FastRouter
from .wrappers import Request, Response

__all__ = ["URLMapping"]

#: What a query string keeps as it is in a redirect's Location: every printable
#: ASCII character (``%`` included, so what is encoded stays encoded).
_URL_SAFE = "".join(map(chr, range(0x21, 0x7F)))


def _without_default_port(server_name: str, scheme: str) -> str:
    if scheme in ("http", "ws") and server_name.endswith(":80"):
        return server_name[:-3]
    if scheme in ("https", "wss") and server_name.endswith(":443"):
        return server_name[:-4]
    return server_name


def _subdomain(host: str, server_name: str) -> str | None:
    """The part of ``host`` before ``SERVER_NAME`` (Werkzeug's rule), or
    ``None`` for a host outside it."""
    current, configured = host.split("."), server_name.split(".")
    offset = -len(configured)
    if current[offset:] != configured:
        return None
    return ".".join(filter(None, current[:offset]))


class URLMapping(AppBase):
    """Matching requests with ``url_map`` (through the fast router first) and
    building URLs from it."""

    _warned_server_name = False

    def create_url_adapter(self, request: Request | None) -> MapAdapter | None:
        """A Werkzeug adapter for matching and building URLs, bound to the request
        (or, outside one, to ``SERVER_NAME``)."""
        if request is not None:
            subdomain = None
            server_name = self.config["SERVER_NAME"]
            if self.url_map.host_matching:
                server_name = None  # the request's host is what host rules match
            elif not self.subdomain_matching:
                subdomain = self.url_map.default_subdomain or ""
            host = request.host.lower()
            server_name = host if server_name is None else _without_default_port(server_name.lower(), request.scheme)
            if subdomain is None and not self.url_map.host_matching:
                subdomain = _subdomain(host, server_name)
                if subdomain is None:
                    # No rule matches it: a 404. Werkzeug warns here; a log line,
                    # once, says the same without turning into an error under
                    # warning filters.
                    subdomain = "<invalid>"
                    if not self._warned_server_name:
                        self._warned_server_name = True
                        self.logger.warning(
                            "Current server name %r doesn't match configured server name %r: such requests get 404.",
                            host, server_name,
                        )
            return self.url_map.bind(
                server_name,
                script_name=request.root_path or "/",
                subdomain=subdomain,
                url_scheme=request.scheme,
                default_method=request.method,
                path_info=request.path,
                # Only a redirect (merged slashes, a missing trailing slash) uses it,
                # in its Location: control characters, spaces and non-ASCII bytes
                # are percent-encoded there, where a CR would be refused by the
                # headers (a 500).
                query_args=quote(request.query_string, safe=_URL_SAFE),
            )
        if self.config["SERVER_NAME"] is not None:
            return self.url_map.bind(
                self.config["SERVER_NAME"],
                script_name=self.config["APPLICATION_ROOT"],
                url_scheme=self.config["PREFERRED_URL_SCHEME"],
            )
        return None

    def match_request(self, request: Request) -> tuple[Rule, dict[str, t.Any]]:
        """The rule and view arguments for the request; raises the routing
        ``HTTPException`` (404, 405, redirect) when there is none."""
        config = self.config
        trusted = config["TRUSTED_HOSTS"]
        if trusted is not None:
            request.trusted_hosts = trusted
            request.host  # noqa: B018 - raises SecurityError (400) for an untrusted host
        if request.is_websocket:
            return self._match_with_werkzeug(request, websocket=True)
        router = self._router
        if router is None:
            router = self._router = FastRouter(self.url_map)
        if (config["SERVER_NAME"] is None or not self.subdomain_matching) and not self._custom_url_adapter:
            found = router.match(request.path, request.method)
            if found is not None:
                return found
        try:
            return self._match_with_werkzeug(request)
        except WebsocketMismatch:
            if request.websocket_capable:
                fix = "Connect with a WebSocket client (ws:// or wss://)."
            else:
                fix = (
                    "WebSockets need an ASGI server: serve the app with uvicorn or hypercorn "
                    "('uvicorn module:app', or 'tether run'), not a WSGI server."
                )
            raise BadRequest(f"{request.path} is a WebSocket endpoint. {fix}") from None

    def _match_with_werkzeug(self, request: Request, websocket: bool = False) -> tuple[Rule, dict[str, t.Any]]:
        adapter = self.create_url_adapter(request)
        assert adapter is not None, "an adapter bound to a request always exists"
        rule, args = adapter.match(return_rule=True, websocket=websocket)
        return rule, dict(args)

    def url_for(
        self,
        /,
        endpoint: str,
        *,
        _anchor: str | None = None,
        _method: str | None = None,
        _scheme: str | None = None,
        _external: bool | None = None,
        **values: t.Any,
    ) -> str:
        """The URL of ``endpoint``; relative in a request, external outside one
        (which needs ``SERVER_NAME``). ``.name`` is relative to the current blueprint."""
        req_ctx = _cv_request.get(None)
        url_adapter: MapAdapter | None
        if req_ctx is not None:
            url_adapter = req_ctx.url_adapter
            assert url_adapter is not None, "a request context always has a URL adapter"
            blueprint_name = req_ctx.request.blueprint
            if endpoint[:1] == ".":
                endpoint = f"{blueprint_name}{endpoint}" if blueprint_name is not None else endpoint[1:]
            if _external is None:
                _external = _scheme is not None
        else:
            app_ctx = _cv_app.get(None)
            url_adapter = app_ctx.url_adapter if app_ctx is not None else self.create_url_adapter(None)
            if url_adapter is None:
                raise RuntimeError(
                    "Unable to build URLs outside an active request without 'SERVER_NAME' "
                    "configured. Also configure 'APPLICATION_ROOT' and 'PREFERRED_URL_SCHEME' "
                    "as needed, or build the URL inside `with app.test_request_context():`."
                )
            if _external is None:
                _external = True
        if _scheme is not None and not _external:
            raise ValueError("When specifying '_scheme', '_external' must be True.")
        self.inject_url_defaults(endpoint, values)
        try:
            rv = url_adapter.build(endpoint, values, method=_method, url_scheme=_scheme, force_external=_external)
        except BuildError as error:
            values.update(_anchor=_anchor, _method=_method, _scheme=_scheme, _external=_external)
            return self.handle_url_build_error(error, endpoint, values)
        if _anchor is not None:
            rv = f"{rv}#{_url_quote(_anchor, safe='%!#$&()*+,/:;=?@')}"
        return rv

    def inject_url_defaults(self, endpoint: str, values: dict[str, t.Any]) -> None:
        names: t.Iterable[str | None] = (None,)
        if "." in endpoint:
            parts = endpoint.split(".")[:-1]
            names = chain(names, (".".join(parts[:i]) for i in range(1, len(parts) + 1)))
        for name in names:
            for func in self.url_default_functions.get(name, ()):
                func(endpoint, values)

    def handle_url_build_error(self, error: BuildError, endpoint: str, values: dict[str, t.Any]) -> str:
        for handler in self.url_build_error_handlers:
            try:
                rv = handler(error, endpoint, values)
            except BuildError as e:
                error = e
            else:
                if rv is not None:
                    return rv
        if error is sys.exc_info()[1]:
            raise
        raise error

    def redirect(self, location: str, code: int = 302) -> Response:
        return t.cast(Response, _redirect(location, code=code, Response=self.response_class))

    def raise_routing_exception(self, request: Request) -> t.NoReturn:
        """Raise the 404, 405 or redirect that matching the request ended with; in
        debug mode, a redirect that would drop a form's body explains itself."""
        exc = request.routing_exception
        assert exc is not None
        if (
            self.debug
            and isinstance(exc, RequestRedirect)
            and exc.code not in (307, 308)
            and request.method not in ("GET", "HEAD", "OPTIONS")
        ):
            raise FormDataRoutingRedirect(request)
        raise exc

    def make_default_options_response(self) -> Response:
        """The answer to ``OPTIONS`` on a rule that did not define it: the allowed methods."""
        adapter = _cv_request.get().url_adapter
        assert adapter is not None, "a request context always has a URL adapter"
        methods = adapter.allowed_methods()
        rv = self.response_class()
        rv.allow.update(methods)
        return rv


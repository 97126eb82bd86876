"""Test tools: ``app.test_client()`` and ``app.test_cli_runner()``, as in Flask."""

from __future__ import annotations

import importlib.metadata
import typing as t
from contextlib import ExitStack, contextmanager
from urllib.parse import urlsplit

import werkzeug.test
from click.testing import CliRunner, Result
from werkzeug.test import TestResponse

from .sessions import SessionMixin

if t.TYPE_CHECKING:
    from .app import Tether

__all__ = ["EnvironBuilder", "TetherClient", "TetherCliRunner"]


class EnvironBuilder(werkzeug.test.EnvironBuilder):
    """Werkzeug's builder with the app's ``SERVER_NAME``, ``APPLICATION_ROOT`` and
    ``PREFERRED_URL_SCHEME`` as defaults, and JSON through the app's provider."""

    def __init__(
        self,
        app: Tether,
        path: str = "/",
        base_url: str | None = None,
        subdomain: str | None = None,
        url_scheme: str | None = None,
        *args: t.Any,
        **kwargs: t.Any,
    ) -> None:
        assert not (base_url or subdomain or url_scheme) or (base_url is not None) != bool(subdomain or url_scheme), (
            'Cannot pass "subdomain" or "url_scheme" with "base_url".'
        )
        if base_url is None:
            http_host = app.config.get("SERVER_NAME") or "localhost"
            app_root = app.config["APPLICATION_ROOT"]
            if subdomain:
                http_host = f"{subdomain}.{http_host}"
            if url_scheme is None:
                url_scheme = app.config["PREFERRED_URL_SCHEME"]
            url = urlsplit(path)
            base_url = f"{url.scheme or url_scheme}://{url.netloc or http_host}/{app_root.lstrip('/')}"
            path = url.path
            if url.query:
                path = f"{path}?{url.query}"
        self.app = app
        super().__init__(path, base_url, *args, **kwargs)

    def json_dumps(self, obj: t.Any, **kwargs: t.Any) -> str:
        return self.app.json.dumps(obj, **kwargs)


_werkzeug_version = importlib.metadata.version("werkzeug")


class TetherClient(werkzeug.test.Client):
    """Werkzeug's test client with a cookie jar on by default, ``session_transaction()``,
    and ``with client:`` keeping the last request's contexts current until the block ends."""

    application: Tether

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.preserve_context = False
        self._new_contexts: list[t.Any] = []
        self._context_stack = ExitStack()
        self.environ_base = {"REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": f"Werkzeug/{_werkzeug_version}"}

    @contextmanager
    def session_transaction(self, *args: t.Any, **kwargs: t.Any) -> t.Iterator[SessionMixin]:
        """Open the session the next request would see, change it, and store it."""
        if self._cookies is None:
            raise TypeError("Cookies are disabled. Create a client with 'use_cookies=True'.")
        app = self.application
        ctx = app.test_request_context(*args, **kwargs)
        self._add_cookies_to_wsgi(ctx.request.environ)
        with ctx:
            sess = app.session_interface.open_session(app, ctx.request)
        if sess is None:
            raise RuntimeError("Session backend did not open a session.")
        yield sess
        resp = app.response_class()
        if app.session_interface.is_null_session(sess):
            return
        with ctx:
            app.session_interface.save_session(app, sess, resp)
        self._update_cookies_from_response(
            ctx.request.host.partition(":")[0], ctx.request.path, resp.headers.getlist("Set-Cookie")
        )

    def _copy_environ(self, other: dict[str, t.Any]) -> dict[str, t.Any]:
        out = {**self.environ_base, **other}
        if self.preserve_context:
            out["werkzeug.debug.preserve_context"] = self._new_contexts.append
        return out

    def _request_from_builder_args(self, args: tuple[t.Any, ...], kwargs: dict[str, t.Any]) -> werkzeug.test.Request:
        kwargs["environ_base"] = self._copy_environ(kwargs.get("environ_base", {}))
        builder = EnvironBuilder(self.application, *args, **kwargs)
        try:
            return builder.get_request()
        finally:
            builder.close()

    def open(
        self, *args: t.Any, buffered: bool = False, follow_redirects: bool = False, **kwargs: t.Any
    ) -> TestResponse:
        if args and isinstance(args[0], (werkzeug.test.EnvironBuilder, dict, werkzeug.wrappers.Request)):
            if isinstance(args[0], werkzeug.test.EnvironBuilder):
                builder = args[0]
                builder.environ_base = self._copy_environ(builder.environ_base or {})
                request = builder.get_request()
            elif isinstance(args[0], dict):
                request = EnvironBuilder.from_environ(args[0], app=self.application, environ_base=self._copy_environ({})).get_request()
            else:
                request = t.cast(werkzeug.test.Request, args[0])
                request.environ = self._copy_environ(request.environ)
        else:
            request = self._request_from_builder_args(args, kwargs)
        self._context_stack.close()
        response = super().open(request, buffered=buffered, follow_redirects=follow_redirects)
        response.json_module = self.application.json  # type: ignore[assignment]
        for preserved in self._new_contexts:
            self._context_stack.enter_context(preserved)
        self._new_contexts.clear()
        return response

    def __enter__(self) -> TetherClient:
        if self.preserve_context:
            raise RuntimeError("Cannot nest client invocations")
        self.preserve_context = True
        return self

    def __exit__(self, exc_type: type | None, exc_value: BaseException | None, tb: t.Any) -> None:
        self.preserve_context = False
        self._context_stack.close()


class TetherCliRunner(CliRunner):
    """Invokes the app's CLI commands with the app loaded, for tests."""

    def __init__(self, app: Tether, **kwargs: t.Any) -> None:
        self.app = app
        super().__init__(**kwargs)

    def invoke(self, cli: t.Any = None, args: t.Any = None, **kwargs: t.Any) -> Result:  # type: ignore[override]
        from .commands import ScriptInfo

        if cli is None:
            cli = self.app.cli
        if "obj" not in kwargs:
            kwargs["obj"] = ScriptInfo(create_app=lambda: self.app)
        return super().invoke(cli, args, **kwargs)

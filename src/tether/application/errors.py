"""Error handling: finding the handler registered for an exception, and what
happens to an exception no handler takes (a logged 500, or raised in tests)."""

from __future__ import annotations

import sys
import typing as t

from werkzeug.debug.tbtools import DebugTraceback
from werkzeug.exceptions import BadRequestKeyError, HTTPException, InternalServerError
from werkzeug.routing import RoutingException

from ..contexts.ctx import RequestContext, _cv_request
from ..contexts.steps import NO_KWARGS, Steps, run
from ..signals import got_request_exception
from .responses import ResponseMaking
from .wrappers import Request, Response

__all__ = ["DEBUG_PAGE", "ErrorHandling"]

#: The environ key that asks for an unhandled error's traceback page in place
#: of the error itself (``tether run`` in debug mode under ASGI sets it:
#: ``tether.serving.debug``), so that the page is finished as every response is.
DEBUG_PAGE = "tether.debug_page"

Ctx = RequestContext[Request]


class ErrorHandling(ResponseMaking):
    """Exceptions raised by hooks and views, turned into responses."""

    def _find_error_handler(self, e: Exception, blueprints: list[str]) -> t.Callable[[Exception], t.Any] | None:
        """The handler registered for ``e`` (blueprints' first, by code, then
        by class along its MRO); an app with none looks nothing up."""
        if not self.error_handler_spec:
            return None
        return self._lookup_error_handler(e, blueprints)

    def _lookup_error_handler(self, e: Exception, blueprints: list[str]) -> t.Callable[[Exception], t.Any] | None:
        exc_class, code = self._get_exc_class_and_code(type(e))
        names = (*blueprints, None)
        for c in (code, None) if code is not None else (None,):
            for name in names:
                handler_map = self.error_handler_spec.get(name, {}).get(c)
                if not handler_map:
                    continue
                for cls in exc_class.__mro__:
                    handler = handler_map.get(cls)
                    if handler is not None:
                        return handler
        return None

    def trap_http_exception(self, e: Exception) -> bool:
        """Whether an HTTP error skips its handlers and is raised (config ``TRAP_*``)."""
        if self.config["TRAP_HTTP_EXCEPTIONS"]:
            return True
        trap_bad_request = self.config["TRAP_BAD_REQUEST_ERRORS"]
        if trap_bad_request is None and self.debug and isinstance(e, BadRequestKeyError):
            return True
        if trap_bad_request:
            return isinstance(e, HTTPException) and e.code == 400
        return False

    def log_exception(self, exc_info: t.Any) -> None:
        """Log an unhandled exception of the current request."""
        ctx = _cv_request.get(None)
        where = f" on {ctx.request.path} [{ctx.request.method}]" if ctx is not None else ""
        self.logger.error(f"Exception{where}", exc_info=exc_info)

    def _handle_user_exception_steps(self, e: Exception, ctx: Ctx) -> Steps[t.Any]:
        if isinstance(e, BadRequestKeyError) and (self.debug or self.config["TRAP_BAD_REQUEST_ERRORS"]):
            e.show_exception = True
        if isinstance(e, HTTPException) and not self.trap_http_exception(e):
            return (yield from self._current_plan().http_exception(self, e, ctx))
        handler = self._find_error_handler(e, ctx.request.blueprints)
        if handler is None:
            raise e
        return (yield handler, (e,), NO_KWARGS)

    def _handle_http_exception_steps(self, e: HTTPException, ctx: Ctx) -> Steps[t.Any]:
        if e.code is None or isinstance(e, RoutingException):
            return e
        handler = self._find_error_handler(e, ctx.request.blueprints)
        return e if handler is None else (yield handler, (e,), NO_KWARGS)

    def _handle_exception_steps(self, e: Exception, ctx: Ctx) -> Steps[Response]:
        exc_info = sys.exc_info()
        if got_request_exception.receivers:
            got_request_exception.send(self, exception=e)
        if self.propagate_exceptions and not ctx.request.environ_value(DEBUG_PAGE):
            if exc_info[1] is e:
                raise
            raise e
        self.log_exception(exc_info)
        if self.propagate_exceptions:  # debug mode's page, which shows the traceback to whoever asked
            page = DebugTraceback(e).render_debugger_html(evalex=False, secret="", evalex_trusted=False)
            response = self.response_class(page, 500, content_type="text/html; charset=utf-8")
            return (yield from self._current_plan().finalize(self, response, ctx, True))
        server_error: t.Any = InternalServerError(original_exception=e)
        handler = self._find_error_handler(server_error, ctx.request.blueprints)
        if handler is not None:
            server_error = yield handler, (server_error,), NO_KWARGS
        return (yield from self._current_plan().finalize(self, server_error, ctx, True))

    def handle_user_exception(self, e: Exception) -> t.Any:
        """Handle an exception from a hook or view with a registered handler;
        re-raise it when none fits (it then becomes a 500)."""
        return run(self._handle_user_exception_steps(e, _cv_request.get()))

    def handle_http_exception(self, e: HTTPException) -> t.Any:
        """An HTTP error raised by a hook or view: its registered handler's
        answer, or the error itself (its own response)."""
        return run(self._handle_http_exception_steps(e, _cv_request.get()))

    def handle_exception(self, e: Exception) -> Response:
        """An unhandled exception: re-raised when propagating (``TESTING``,
        ``DEBUG`` or ``PROPAGATE_EXCEPTIONS``), else logged and turned into a 500."""
        return run(self._handle_exception_steps(e, _cv_request.get()))

    def should_ignore_error(self, error: BaseException | None) -> bool:
        """Return ``True`` to hide ``error`` from teardown functions."""
        return False

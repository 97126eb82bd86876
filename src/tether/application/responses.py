"""Building responses: a view's return value made into a ``Response``, the
``after_request`` functions run on it, and the session saved into it."""

from __future__ import annotations

import sys
import typing as t
from collections.abc import AsyncIterator, Iterator
from itertools import chain

from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as WerkzeugResponse

from ..contexts.ctx import RequestContext, _cv_request
from ..contexts.steps import NO_KWARGS, Steps, run
from ..signals import request_finished
from .plan import Plan
from .sessions import SessionMixin
from .streaming import prime_steps
from .urls import URLMapping
from .wrappers import Request, Response

__all__ = ["ResponseMaking"]

Ctx = RequestContext[Request]


class ResponseMaking(URLMapping):
    """From a view's return value to the response that is sent."""

    def make_response(self, rv: t.Any) -> Response:
        """Turn a view's return value into a ``Response``: ``str``/``bytes``, a dict or
        list (JSON), a response, an iterator (streamed), or a tuple adding status
        and/or headers. Anything else, ``None`` included, is a ``TypeError``."""
        status: t.Any = None
        headers: t.Any = None
        if type(rv) is tuple:
            rv, status, headers = _unpack(rv)
        if isinstance(rv, (str, bytes, bytearray)):
            response = self.response_class(rv, status, headers)
            status = headers = None
        elif isinstance(rv, (dict, list)):
            response = t.cast(Response, self.json.response(rv))
        elif isinstance(rv, self.response_class):
            response = rv
        elif isinstance(rv, (Iterator, AsyncIterator)):
            response = self.response_class(rv, status=status, headers=headers)
            status = headers = None
        elif isinstance(rv, HTTPException):
            response = t.cast(Response, self.response_class.force_type(rv.get_response()))
        elif isinstance(rv, WerkzeugResponse) or callable(rv):
            try:
                environ = _cv_request.get().request.environ
                # Werkzeug runs a WSGI callable given here, though it annotates a response.
                response = t.cast(Response, self.response_class.force_type(rv, environ))
            except TypeError as e:
                raise TypeError(
                    f"{e}\nThe view function for {self._endpoint_name()!r} did not return a "
                    "valid response. The return type must be a string, dict, list, tuple "
                    f"with headers or status, Response instance, or WSGI callable, but it "
                    f"was a {type(rv).__name__}."
                ).with_traceback(sys.exc_info()[2]) from None
        elif rv is None:
            raise TypeError(
                f"The view function for {self._endpoint_name()!r} did not return a valid "
                "response. The function either returned None or ended without a return statement."
            )
        else:
            raise TypeError(
                f"The view function for {self._endpoint_name()!r} did not return a valid "
                "response. The return type must be a string, dict, list, tuple with headers "
                "or status, Response instance, iterator, async iterator, or WSGI callable, "
                f"but it was a {type(rv).__name__}."
            )
        if status is not None:
            if isinstance(status, (str, bytes, bytearray)):
                response.status = status if isinstance(status, str) else status.decode()
            else:
                response.status_code = status
        if headers:
            response.headers.update(headers)
        return response

    def _endpoint_name(self) -> str | None:
        ctx = _cv_request.get(None)
        return ctx.request.endpoint if ctx is not None else None

    def _current_plan(self) -> Plan:
        """The plan of this app's requests (``tether.application.plan``): the
        one compiled at the first request, or before it a fresh one."""
        raise NotImplementedError  # the pipeline, which knows every step, compiles it

    def _finalize_steps(
        self, rv: t.Any, ctx: Ctx, from_error_handler: bool = False, prime: bool = False
    ) -> Steps[Response]:
        """Flask's ``finalize_request``: the response of ``rv``, processed
        (``process_response``), then announced. With ``prime``, a streamed body
        is produced up to its first chunk before that, so that an error there
        is handled as the view's own (``tether.application.streaming``)."""
        plan = self._plan or self._current_plan()
        response = self.make_response(rv)
        if prime and type(response.response) is not list and response.produces_first_chunk_early() and ctx.request.method != "HEAD":
            try:
                response.response = yield from prime_steps(response.response)
            except Exception as e:
                response = self.make_response((yield from plan.user_exception(self, e, ctx)))
        try:
            process = plan.process_response
            if process is not None:
                response = yield from process(self, response, ctx)
            elif ctx._after_request_functions or self.after_request_funcs:
                response = yield from self._process_response_steps(response, ctx)
            else:
                self._finish_headers(response, ctx)  # all there is to process
            if request_finished.receivers:
                request_finished.send(self, response=response)
        except Exception:
            if not from_error_handler:
                raise
            self.logger.exception("Request finalizing failed with an error while handling an error")
        return response

    def _processed_steps(self, response: Response, ctx: Ctx) -> Steps[Response]:
        """``response`` through the plan's ``process_response``: the app's own,
        or tether's (:meth:`_process_response_steps`)."""
        process = (self._plan or self._current_plan()).process_response
        if process is None:
            return (yield from self._process_response_steps(response, ctx))
        return (yield from process(self, response, ctx))

    def _process_response_steps(self, response: Response, ctx: Ctx) -> Steps[Response]:
        """Flask's ``process_response``: ``after_this_request`` functions, the
        ``after_request`` functions (blueprints' first, newest first), then the
        session saved."""
        for func in ctx._after_request_functions:
            response = yield func, (response,), NO_KWARGS
        if self.after_request_funcs:  # extensions add to it while serving: checked each time
            for name in chain(ctx.request.blueprints, (None,)):
                for func in reversed(self.after_request_funcs.get(name, ())):
                    response = yield func, (response,), NO_KWARGS
        self._finish_headers(response, ctx)
        return response

    def _finish_headers(self, response: Response, ctx: Ctx) -> None:
        """The last step of every response's headers, whichever way it was
        processed: the session saved into it. After this the headers are final
        (``headers_final``); a header every response should carry is set here."""
        # A request that sent cookies may carry a permanent session to refresh, as
        # in Flask; one that sent none never opens the session (most requests
        # leave here).
        if not ctx.session_opened and (
            not ctx.request.sends_cookies() or not self.config["SESSION_REFRESH_EACH_REQUEST"]
        ):
            ctx.headers_final = True
            return
        session = t.cast(SessionMixin, ctx._session)  # saving it is not the app reading it
        if not self.session_interface.is_null_session(session):
            self.session_interface.save_session(self, session, response)
        ctx.headers_final = True
        seal = getattr(session, "seal", None)
        if seal is not None:
            seal(
                f"The session of {ctx.request.method} {ctx.request.path} was changed after "
                "its response headers were sent, so the change could not be saved. Change "
                "the session in the view (or a before/after_request hook), before the "
                "streamed body starts."
            )

    def finalize_request(self, rv: t.Any, from_error_handler: bool = False) -> Response:
        """Make the response of ``rv`` and run the after hooks on it."""
        return run(self._finalize_steps(rv, _cv_request.get(), from_error_handler))

    def process_response(self, response: Response) -> Response:
        """Run ``after_this_request`` and ``after_request`` functions, then save the session."""
        return run(self._process_response_steps(response, _cv_request.get()))


def _unpack(rv: tuple[t.Any, ...]) -> tuple[t.Any, t.Any, t.Any]:
    """``(body, status, headers)`` from a view's tuple, either of the last two ``None``."""
    if len(rv) == 3:
        return rv[0], rv[1], rv[2]
    if len(rv) == 2:
        if isinstance(rv[1], (Headers, dict, tuple, list)):
            return rv[0], None, rv[1]
        return rv[0], rv[1], None
    raise TypeError(
        "The view function did not return a valid response tuple. The tuple must "
        "have the form (body, status, headers), (body, status), or (body, headers)."
    )

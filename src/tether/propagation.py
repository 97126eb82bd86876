"""Carrying contexts into code that runs later or elsewhere.

Every request runs in a ``contextvars.Context`` of its own. A streamed body is
produced inside that same Context and its close pops the request context there,
so nothing is ever left current on the server's thread, whichever thread
iterates, closes or garbage-collects the body.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import functools
import io
import threading
import typing as t
from concurrent.futures import Future, ThreadPoolExecutor
from tempfile import SpooledTemporaryFile

from werkzeug.datastructures import FileStorage, MultiDict

from .globals import _cv_request
from .steps import run_coroutine

if t.TYPE_CHECKING:
    from .application import Application
    from .wrappers import Request

__all__ = ["ContextBody", "RequestSnapshot", "ThreadedIterator", "copy_current_request_context", "stream_with_context"]

F = t.TypeVar("F", bound=t.Callable[..., t.Any])


class ContextBody:
    """A response body whose chunks are produced inside ``context``.

    ``finish(error)`` runs inside ``context`` exactly once: when the body is
    exhausted (every chunk has been handed to the server), when the server
    closes it early (the client went away), or when the garbage collector
    finalizes it on any thread.
    """

    __slots__ = ("_context", "_iterator", "_finish", "_lock", "_done", "_error")

    def __init__(
        self,
        context: contextvars.Context,
        iterable: t.Iterable[bytes | str],
        finish: t.Callable[[BaseException | None], None],
    ) -> None:
        self._context = context
        self._iterator = _sync_iterator(iterable)
        self._finish = finish
        self._lock = threading.Lock()
        self._done = False
        self._error: BaseException | None = None

    def __iter__(self) -> ContextBody:
        return self

    def __next__(self) -> bytes:
        try:
            chunk = self._context.run(next, self._iterator)
        except StopIteration:
            self.close()
            raise
        except BaseException as e:
            self._error = e
            raise
        return chunk.encode() if isinstance(chunk, str) else chunk

    def close(self) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        self._context.run(self._close_and_finish)

    def _close_and_finish(self) -> None:
        # The iterator first (an async body's wrapper closes it on its own loop),
        # then the request.
        close = getattr(self._iterator, "close", None)
        try:
            if close is not None:
                close()
        finally:
            self._finish(self._error)

    def __del__(self) -> None:
        if not self._done:
            self.close()


def _sync_iterator(iterable: t.Iterable[t.Any] | t.AsyncIterable[t.Any]) -> t.Iterator[t.Any]:
    """An async body, served synchronously: each chunk is awaited on this
    thread's event loop (inside the request's Context, as every chunk is)."""
    if not hasattr(iterable, "__aiter__"):
        return iter(iterable)  # type: ignore[arg-type]
    iterator = iterable.__aiter__()

    def chunks() -> t.Iterator[t.Any]:
        try:
            while True:
                try:
                    yield run_coroutine(iterator.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                run_coroutine(aclose())

    return chunks()


class ThreadedIterator:
    """A sync iterable, iterated from async code: each item is fetched in
    ``pool`` (it may block) inside a copy of the context it was created in, so a
    generator source still sees ``request`` and ``g``. Closing it while an item
    is being fetched closes the source once that fetch returns: a generator
    cannot be closed while it runs, and a blocked one must not hold up the close.
    """

    def __init__(self, iterable: t.Iterable[t.Any], pool: ThreadPoolExecutor) -> None:
        self._iterator = iter(iterable)
        self._pool = pool
        self._context = contextvars.copy_context()
        self._running: Future[t.Any] | None = None

    def __aiter__(self) -> ThreadedIterator:
        return self

    def __anext__(self) -> asyncio.Future[t.Any]:
        self._running = self._pool.submit(self._context.run, _next_or_stop, self._iterator)
        return asyncio.wrap_future(self._running)

    async def aclose(self) -> None:
        close = getattr(self._iterator, "close", None)
        if close is None:
            return
        running = self._running
        if running is not None and not running.done():
            # Called in the fetching thread once the generator has stopped running.
            running.add_done_callback(lambda _: self._context.run(close))
        else:
            self._context.run(close)


def _next_or_stop(iterator: t.Iterator[t.Any]) -> t.Any:
    try:
        return next(iterator)
    except StopIteration:
        raise StopAsyncIteration from None


def copy_current_request_context(f: F) -> F:
    """Decorate ``f`` so it runs with a copy of the current request context pushed,
    wherever it is called (typically in a thread started by a view)."""
    ctx = _cv_request.get(None)
    if ctx is None:
        raise RuntimeError(
            "'copy_current_request_context' can only be used while a request context is "
            "current, such as in a view function."
        )
    copied = ctx.copy()

    @functools.wraps(f)
    def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
        with copied:
            return f(*args, **kwargs)

    return t.cast(F, wrapper)


def stream_with_context(generator_or_function: t.Any) -> t.Any:
    """Kept for Flask compatibility: tether already produces a returned body
    inside its request's context. This also makes an iterator consumed anywhere
    else (another thread, a later call) see the context it was created in."""
    if not hasattr(generator_or_function, "__next__") and callable(generator_or_function):
        function = generator_or_function

        @functools.wraps(function)
        def decorator(*args: t.Any, **kwargs: t.Any) -> t.Any:
            return stream_with_context(function(*args, **kwargs))

        return decorator
    return _in_context(contextvars.copy_context(), iter(generator_or_function))


def _in_context(context: contextvars.Context, iterator: t.Iterator[t.Any]) -> t.Iterator[t.Any]:
    try:
        while True:
            try:
                item = context.run(next, iterator)
            except StopIteration:
                return
            yield item
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            context.run(close)


class RequestSnapshot:
    """A copy of a request that outlives it: body, form, files (copied, so that
    closing the request's uploads does not close these), headers, args, URL."""

    def __init__(self, request: Request) -> None:
        form = request.form
        self.files = MultiDict(
            (name, _copy_file(storage)) for name, storage in request.files.items(multi=True)
        )
        self.form = form.copy()
        self.data = request.get_data(cache=True)
        self.environ = {
            key: value for key, value in request.environ.items() if key not in ("wsgi.input", "werkzeug.request")
        }
        self.url_rule = request.url_rule
        self.view_args = copy.copy(request.view_args)

    def request(self, app: Application, environ: dict[str, t.Any] | None = None) -> Request:
        """A request with this snapshot's data. Given an ``environ`` (a changed
        copy of :attr:`environ`, as ``forward`` makes), its URL is matched anew."""
        rerouted = environ is not None
        environ = dict(self.environ if environ is None else environ)
        environ["wsgi.input"] = io.BytesIO(self.data)
        request = app.request_class(environ)
        request.__dict__.update(form=self.form, files=self.files, _cached_data=self.data)
        if rerouted:
            request._tether_app = app
        else:
            request.__dict__.update(url_rule=self.url_rule, view_args=self.view_args, routing_exception=None)
        return request


def _copy_file(storage: FileStorage) -> FileStorage:
    position = storage.stream.tell()
    storage.stream.seek(0)
    copied = SpooledTemporaryFile(max_size=1024 * 1024)
    while chunk := storage.stream.read(65536):
        copied.write(chunk)
    storage.stream.seek(position)
    copied.seek(0)
    return FileStorage(copied, storage.filename, storage.name, storage.content_type, headers=storage.headers)

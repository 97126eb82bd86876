"""A copy of a request that outlives it, for work that runs after the response:
spawned jobs (``app.spawn``) and internal forwards."""

from __future__ import annotations

import copy
import io
import typing as t
from tempfile import SpooledTemporaryFile

from werkzeug.datastructures import FileStorage, MultiDict

from ..application.pipeline import Application
from ..application.werkzeug_private import CACHED_DATA
from ..application.wrappers import Request

__all__ = ["RequestSnapshot"]


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
        # Werkzeug's cached properties, filled with the copies.
        request.__dict__.update({"form": self.form, "files": self.files, CACHED_DATA: self.data})
        if rerouted:
            request.match_url_later(app)
        else:
            request.url_rule, request.view_args, request.routing_exception = self.url_rule, self.view_args, None
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

"""Debug-mode explanations of three common mistakes: a file field read from a
form sent without ``multipart/form-data``, a form posted to a URL that
redirects (the browser drops the body), and a template no loader finds.
Messages follow Flask's, so answers written for Flask users apply."""

from __future__ import annotations

import typing as t

from jinja2.loaders import BaseLoader
from werkzeug.routing import RequestRedirect

from ..contexts.ctx import _cv_request

#: tether's Request (annotated loosely: wrappers imports this module).
Request = t.Any

__all__ = ["DebugFilesKeyError", "FormDataRoutingRedirect", "UnexpectedUnicodeError", "explain_template_loading_attempts"]


class UnexpectedUnicodeError(AssertionError, UnicodeError):
    """Unexpected text or binary data, reported with a better message."""


class DebugFilesKeyError(KeyError, AssertionError):
    """``request.files[key]`` in debug mode when the form was not sent as
    ``multipart/form-data``: only the file names arrived, in ``request.form``."""

    def __init__(self, request: Request, key: str) -> None:
        message = (
            f"You tried to access the file {key!r} in the request.files dictionary but it does not exist. "
            f"The mimetype for the request is {request.mimetype!r} instead of 'multipart/form-data' which "
            "means that no file contents were transmitted. To fix this error you should provide "
            'enctype="multipart/form-data" in your form.'
        )
        names = request.form.getlist(key)
        if names:
            message += (
                "\n\nThe browser instead transmitted some file names. "
                f"This was submitted: {', '.join(repr(name) for name in names)}"
            )
        self.msg = message

    def __str__(self) -> str:
        return self.msg


class FormDataRoutingRedirect(AssertionError):
    """In debug mode, a routing redirect (301, 302) of a request with a body: a
    browser would follow it without the form data."""

    def __init__(self, request: Request) -> None:
        exc = request.routing_exception
        assert isinstance(exc, RequestRedirect)
        message = f"A request was sent to '{request.url}', but routing issued a redirect to the canonical URL '{exc.new_url}'."
        if f"{request.base_url}/" == exc.new_url.partition("?")[0]:
            message += (
                " The URL was defined with a trailing slash. tether will redirect to the URL with a "
                "trailing slash if it was accessed without one."
            )
        message += (
            " Send requests to the canonical URL, or use 307 or 308 for routing redirects. Otherwise, "
            "browsers will drop form data.\n\nThis exception is only raised in debug mode."
        )
        super().__init__(message)


def attach_enctype_error_multidict(request: Request) -> None:
    """Make ``request.files[key]`` raise :class:`DebugFilesKeyError` for a key
    that came as a plain form field."""
    files = request.files

    class DebugFiles(type(files)):  # type: ignore[misc]
        def __getitem__(self, key: str) -> t.Any:
            try:
                return super().__getitem__(key)
            except KeyError as e:
                if key not in request.form:
                    raise
                raise DebugFilesKeyError(request, key).with_traceback(e.__traceback__) from None

    files.__class__ = DebugFiles


def explain_template_loading_attempts(
    app: t.Any, template: str, attempts: list[tuple[BaseLoader, t.Any, tuple[t.Any, ...] | None]]
) -> None:
    """Log, at info level, which loaders were tried for ``template`` and what
    each found (``EXPLAIN_TEMPLATE_LOADING``)."""
    lines = [f"Locating template {template!r}:"]
    found = 0
    for index, (loader, source, triple) in enumerate(attempts, start=1):
        if source is app:
            where = f"application {source.import_name!r}"
        else:
            where = f"blueprint {source.name!r} ({source.import_name})"
        lines.append(f"{index:5}: trying loader of {where}")
        lines.extend(f"       {line}" for line in _dump_loader_info(loader))
        if triple is None:
            lines.append("       -> no match")
        else:
            found += 1
            lines.append(f"       -> found ({triple[1] or '<string>'!r})")
    fishy = found != 1
    if found == 0:
        lines.append("Error: the template could not be found.")
    elif found > 1:
        lines.append("Warning: multiple loaders returned a match for the template.")
    ctx = _cv_request.get(None)
    blueprint = ctx.request.blueprint if ctx is not None else None
    if blueprint is not None and fishy:
        lines.append(f"  The template was looked up from an endpoint that belongs to the blueprint {blueprint!r}.")
        lines.append("  Maybe you did not place a template in the right folder?")
        lines.append("  See https://flask.palletsprojects.com/blueprints/#templates")
    app.logger.info("\n".join(lines))


def _dump_loader_info(loader: BaseLoader) -> t.Iterator[str]:
    yield f"class: {type(loader).__module__}.{type(loader).__name__}"
    for key, value in sorted(loader.__dict__.items()):
        if key.startswith("_"):
            continue
        if isinstance(value, (tuple, list)) and all(isinstance(item, str) for item in value):
            yield f"{key}:"
            yield from (f"  - {item}" for item in value)
        elif isinstance(value, (str, int, float, bool)):
            yield f"{key}: {value!r}"

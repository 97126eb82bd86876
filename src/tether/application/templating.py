"""Jinja templates: an environment per app that finds templates in the app's
and its blueprints' template folders, with ``request``, ``session``, ``g``,
``config`` and ``url_for`` in every template's context."""

from __future__ import annotations

import typing as t

from jinja2 import BaseLoader, Template, TemplateNotFound
from jinja2 import Environment as _Environment

from .. import signals
from ..contexts.ctx import _cv_app, _cv_request
from ..contexts.globals import current_app
from .debughelpers import explain_template_loading_attempts

__all__ = [
    "Environment",
    "TemplateApp",
    "default_template_ctx_processor",
    "render_template",
    "render_template_string",
    "stream_template",
    "stream_template_string",
]


class TemplateApp(t.Protocol):
    """What templates need of an application."""

    @property
    def jinja_loader(self) -> BaseLoader | None: ...

    def create_global_jinja_loader(self) -> BaseLoader: ...

    @property
    def jinja_env(self) -> _Environment: ...

    def iter_blueprints(self) -> t.Iterable[t.Any]: ...

    def update_template_context(self, context: dict[str, t.Any]) -> None: ...

    @property
    def config(self) -> t.Any: ...

    @property
    def logger(self) -> t.Any: ...


def default_template_ctx_processor() -> dict[str, t.Any]:
    """``g`` and ``request`` themselves, where current, in place of the proxies
    that are Jinja globals (a faster read); ``session`` stays the global proxy,
    so that only a template that reads it opens it, as in Flask."""
    rv: dict[str, t.Any] = {}
    app_ctx = _cv_app.get(None)
    if app_ctx is not None:
        rv["g"] = app_ctx.g
    request_ctx = _cv_request.get(None)
    if request_ctx is not None:
        rv["request"] = request_ctx.request
    return rv


class Environment(_Environment):
    """A Jinja environment bound to an app."""

    def __init__(self, app: TemplateApp, **options: t.Any) -> None:
        if "loader" not in options:
            options["loader"] = app.create_global_jinja_loader()
        super().__init__(**options)
        self.app = app


class DispatchingJinjaLoader(BaseLoader):
    """Looks in the app's template folder, then in each blueprint's."""

    def __init__(self, app: TemplateApp) -> None:
        self.app = app

    def _iter_loaders(self, template: str) -> t.Iterator[tuple[t.Any, BaseLoader]]:
        """The app and each blueprint that has templates, with its loader, in
        lookup order (``template`` is for overrides that choose by name)."""
        for scaffold in (self.app, *self.app.iter_blueprints()):
            loader = scaffold.jinja_loader
            if loader is not None:
                yield scaffold, loader

    def get_source(self, environment: _Environment, template: str) -> tuple[str, str | None, t.Callable[[], bool] | None]:
        if self.app.config["EXPLAIN_TEMPLATE_LOADING"]:
            return self._get_source_explained(environment, template)
        return self._get_source_fast(environment, template)

    def _get_source_fast(
        self, environment: _Environment, template: str
    ) -> tuple[str, str | None, t.Callable[[], bool] | None]:
        """The first loader's source that has ``template``."""
        for _, loader in self._iter_loaders(template):
            try:
                return loader.get_source(environment, template)
            except TemplateNotFound:
                continue
        raise TemplateNotFound(template)

    def _get_source_explained(
        self, environment: _Environment, template: str
    ) -> tuple[str, str | None, t.Callable[[], bool] | None]:
        """Every loader is tried, so that the log says which ones found it."""
        attempts: list[tuple[BaseLoader, t.Any, tuple[t.Any, ...] | None]] = []
        for scaffold, loader in self._iter_loaders(template):
            try:
                rv = loader.get_source(environment, template)
            except TemplateNotFound:
                rv = None
            attempts.append((loader, scaffold, rv))
        explain_template_loading_attempts(self.app, template, attempts)
        found = next((rv for _, _, rv in attempts if rv is not None), None)
        if found is None:
            raise TemplateNotFound(template)
        return found

    def list_templates(self) -> list[str]:
        names: set[str] = set()
        for scaffold in (self.app, *self.app.iter_blueprints()):
            if scaffold.jinja_loader is not None:
                names.update(scaffold.jinja_loader.list_templates())
        return sorted(names)


def _render(app: TemplateApp, template: Template, context: dict[str, t.Any]) -> str:
    app.update_template_context(context)
    if signals.before_render_template.receivers:
        signals.before_render_template.send(app, template=template, context=context)
    rv = template.render(context)
    if signals.template_rendered.receivers:
        signals.template_rendered.send(app, template=template, context=context)
    return rv


def render_template(template_name_or_list: str | Template | list[str | Template], **context: t.Any) -> str:
    """Render a template from the template folders with ``context``."""
    app = current_app._get_current_object()
    template = app.jinja_env.get_or_select_template(template_name_or_list)
    return _render(app, template, context)


def render_template_string(source: str, **context: t.Any) -> str:
    """Render a template given as a string."""
    app = current_app._get_current_object()
    return _render(app, app.jinja_env.from_string(source), context)


def _stream(app: TemplateApp, template: Template, context: dict[str, t.Any]) -> t.Iterator[str]:
    app.update_template_context(context)
    if signals.before_render_template.receivers:
        signals.before_render_template.send(app, template=template, context=context)
    yield from template.generate(context)
    if signals.template_rendered.receivers:
        signals.template_rendered.send(app, template=template, context=context)


def stream_template(template_name_or_list: str | Template | list[str | Template], **context: t.Any) -> t.Iterator[str]:
    """Render a template chunk by chunk, as a streamed response body."""
    app = current_app._get_current_object()
    return _stream(app, app.jinja_env.get_or_select_template(template_name_or_list), context)


def stream_template_string(source: str, **context: t.Any) -> t.Iterator[str]:
    app = current_app._get_current_object()
    return _stream(app, app.jinja_env.from_string(source), context)

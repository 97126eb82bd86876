"""Blueprints: groups of routes and hooks registered on an app under a name
(and usually a URL prefix), possibly nested."""

from __future__ import annotations

import os
import typing as t
from collections import defaultdict

from ..contexts.ctx import _sentinel
from .scaffold import Scaffold, endpoint_from_view_func
from .scaffold import registering as _registering

__all__ = ["BlueprintBase", "BlueprintApp", "BlueprintSetupState"]

F = t.TypeVar("F", bound=t.Callable[..., t.Any])
DeferredSetupFunction = t.Callable[["BlueprintSetupState"], None]
Registry = t.MutableMapping[str | None, list[t.Any]]


class BlueprintApp(t.Protocol):
    """What registering a blueprint needs of an application (``tether.Tether``)."""

    @property
    def blueprints(self) -> dict[str, BlueprintBase]: ...

    @property
    def view_functions(self) -> dict[str, t.Callable[..., t.Any]]: ...

    @property
    def error_handler_spec(self) -> dict[str | None, dict[int | None, dict[type[Exception], t.Callable[..., t.Any]]]]: ...

    @property
    def before_request_funcs(self) -> Registry: ...

    @property
    def after_request_funcs(self) -> Registry: ...

    @property
    def teardown_request_funcs(self) -> Registry: ...

    @property
    def url_default_functions(self) -> Registry: ...

    @property
    def url_value_preprocessors(self) -> Registry: ...

    @property
    def template_context_processors(self) -> Registry: ...

    @property
    def before_websocket_funcs(self) -> Registry: ...

    @property
    def after_websocket_funcs(self) -> Registry: ...

    @property
    def teardown_websocket_funcs(self) -> Registry: ...

    def add_url_rule(self, rule: str, endpoint: str | None = None, view_func: t.Callable[..., t.Any] | None = None, **options: t.Any) -> None: ...

    def register_error_handler(self, code_or_exception: type[Exception] | int, f: t.Callable[..., t.Any]) -> None: ...

    def add_template_filter(self, f: t.Callable[..., t.Any], name: str | None = None) -> None: ...

    def add_template_global(self, f: t.Callable[..., t.Any], name: str | None = None) -> None: ...

    def add_template_test(self, f: t.Callable[..., bool], name: str | None = None) -> None: ...


def _own(options: dict[str, t.Any], key: str, default: str | None) -> str | None:
    """A registration option, where ``None`` means "the blueprint's own", as in Flask."""
    value = options.get(key)
    return default if value is None else value


def _nested(parent: str | None, child: str | None, pattern: str | None) -> str | None:
    """A nested blueprint's subdomain (``pattern``) or URL prefix (``None``):
    the child's within the parent's, or whichever of them is set."""
    if parent is None or child is None:
        return child if child is not None else parent
    if pattern is None:
        return parent.rstrip("/") + "/" + child.lstrip("/")
    return pattern.format(child=child, parent=parent)


class BlueprintSetupState:
    """What one registration of a blueprint on an app knows: the app, the
    options, the full name and URL prefix."""

    def __init__(self, blueprint: BlueprintBase, app: BlueprintApp, options: dict[str, t.Any], first_registration: bool) -> None:
        self.app = app
        self.blueprint = blueprint
        self.options = options
        self.first_registration = first_registration
        self.subdomain = _own(options, "subdomain", blueprint.subdomain)
        self.url_prefix = _own(options, "url_prefix", blueprint.url_prefix)
        self.name = options.get("name", blueprint.name)
        self.name_prefix = options.get("name_prefix", "")
        self.url_defaults = dict(blueprint.url_values_defaults)
        self.url_defaults.update(options.get("url_defaults", ()))

    def add_url_rule(self, rule: str, endpoint: str | None = None, view_func: t.Callable[..., t.Any] | None = None, **options: t.Any) -> None:
        if self.url_prefix is not None:
            rule = "/".join((self.url_prefix.rstrip("/"), rule.lstrip("/"))) if rule else self.url_prefix
        options.setdefault("subdomain", self.subdomain)
        if endpoint is None:
            endpoint = endpoint_from_view_func(view_func)
        defaults = self.url_defaults
        if "defaults" in options:
            defaults = dict(defaults, **options.pop("defaults"))
        self.app.add_url_rule(
            rule, f"{self.name_prefix}.{self.name}.{endpoint}".lstrip("."), view_func, defaults=defaults, **options
        )


class BlueprintBase(Scaffold):
    """Routes and hooks recorded now and registered on an app later, under the
    blueprint's name: its endpoints are ``name.endpoint``. Users make
    ``tether.Blueprint``, which adds commands (``bp.cli``, of the top layer)."""

    #: Set by the first registration; setup methods are refused after it.
    _got_registered_once = False

    def __init__(
        self,
        name: str,
        import_name: str,
        static_folder: str | os.PathLike[str] | None = None,
        static_url_path: str | None = None,
        template_folder: str | os.PathLike[str] | None = None,
        url_prefix: str | None = None,
        subdomain: str | None = None,
        url_defaults: dict[str, t.Any] | None = None,
        root_path: str | None = None,
        cli_group: str | None = _sentinel,
    ) -> None:
        super().__init__(import_name, static_folder, static_url_path, template_folder, root_path)
        if not name:
            raise ValueError("'name' may not be empty.")
        if "." in name:
            raise ValueError("'name' may not contain a dot '.' character.")
        self.name = name
        self.url_prefix = url_prefix
        self.subdomain = subdomain
        self.deferred_functions: list[DeferredSetupFunction] = []
        self.url_values_defaults = url_defaults or {}
        self._blueprints: list[tuple[BlueprintBase, dict[str, t.Any]]] = []
        #: The app command group its commands join when registered: by default
        #: one named after the blueprint, with ``None`` the app's own commands.
        self.cli_group = cli_group

    def open_resource(self, resource: str, mode: str = "rb", encoding: str | None = "utf-8") -> t.IO[t.Any]:
        """Open a file relative to the blueprint's ``root_path``; text is UTF-8
        unless told otherwise, as in Flask (whose app default is the locale's)."""
        return super().open_resource(resource, mode, encoding)

    def record(self, func: DeferredSetupFunction) -> None:
        """Run ``func(state)`` when the blueprint is registered."""
        self.deferred_functions.append(func)

    def record_once(self, func: DeferredSetupFunction) -> None:
        """Run ``func(state)`` on the first registration only."""

        def wrapper(state: BlueprintSetupState) -> None:
            if state.first_registration:
                func(state)

        self.record(wrapper)

    def register_blueprint(self, blueprint: BlueprintBase, **options: t.Any) -> None:
        """Nest ``blueprint`` in this one; its names and URL prefix join this one's."""
        if blueprint is self:
            raise ValueError("Cannot register a blueprint on itself")
        self._blueprints.append((blueprint, options))

    def make_setup_state(
        self, app: BlueprintApp, options: dict[str, t.Any], first_registration: bool = False
    ) -> BlueprintSetupState:
        """The state one registration's setup goes through (its routes, its
        recorded functions, its nested blueprints' prefixes): override to give a
        ``BlueprintSetupState`` subclass, as on Flask."""
        return BlueprintSetupState(self, app, options, first_registration)

    def _check_setup_finished(self, f_name: str) -> None:
        """Refuse a setup method once registered: the app already has what the
        blueprint recorded, so a later change would apply to some registrations only."""
        if self._got_registered_once:
            raise AssertionError(
                f"The setup method '{f_name}' can no longer be called on the blueprint '{self.name}'. It has "
                "already been registered at least once, so the change would not apply consistently. Set up "
                "the blueprint (imports, decorators) before registering it."
            )

    def register(self, app: BlueprintApp, options: dict[str, t.Any]) -> None:
        name_prefix = options.get("name_prefix", "")
        self_name = options.get("name", self.name)
        name = f"{name_prefix}.{self_name}".lstrip(".")
        if name in app.blueprints:
            bp_desc = "this" if app.blueprints[name] is self else "a different"
            existing_at = f" '{name}'" if self_name != name else ""
            raise ValueError(
                f"The name '{self_name}' is already registered for {bp_desc} blueprint"
                f"{existing_at}. Use 'name=' to provide a unique name."
            )
        first_bp_registration = not any(bp is self for bp in app.blueprints.values())
        app.blueprints[name] = self
        self._got_registered_once = True
        state = self.make_setup_state(app, options, first_bp_registration)
        if self.has_static_folder:
            state.add_url_rule(f"{self.static_url_path}/<path:filename>", view_func=self.send_static_file, endpoint="static")
        self._merge_blueprint_funcs(app, name)
        for deferred in self.deferred_functions:
            deferred(state)
        for blueprint, bp_options in self._blueprints:
            bp_options = bp_options.copy()
            subdomain = _nested(state.subdomain, _own(bp_options, "subdomain", blueprint.subdomain), "{child}.{parent}")
            url_prefix = _nested(state.url_prefix, _own(bp_options, "url_prefix", blueprint.url_prefix), None)
            if subdomain is not None:
                bp_options["subdomain"] = subdomain
            if url_prefix is not None:
                bp_options["url_prefix"] = url_prefix
            bp_options["name_prefix"] = name
            blueprint.register(app, bp_options)

    def _merge_blueprint_funcs(self, app: BlueprintApp, name: str) -> None:
        def extend(bp_dict: Registry, parent_dict: Registry) -> None:
            for key, values in bp_dict.items():
                parent_dict[name if key is None else f"{name}.{key}"].extend(values)

        for key, value in self.error_handler_spec.items():
            key = name if key is None else f"{name}.{key}"
            app.error_handler_spec[key] = defaultdict(dict, {code: dict(handlers) for code, handlers in value.items()})
        # Flask adds endpoints given with @bp.endpoint() unprefixed: they name
        # rules added to the app's url_map directly.
        for endpoint, func in self.view_functions.items():
            app.view_functions[endpoint] = func
        extend(self.before_request_funcs, app.before_request_funcs)
        extend(self.after_request_funcs, app.after_request_funcs)
        extend(self.teardown_request_funcs, app.teardown_request_funcs)
        extend(self.url_default_functions, app.url_default_functions)
        extend(self.url_value_preprocessors, app.url_value_preprocessors)
        extend(self.template_context_processors, app.template_context_processors)
        extend(self.before_websocket_funcs, app.before_websocket_funcs)
        extend(self.after_websocket_funcs, app.after_websocket_funcs)
        extend(self.teardown_websocket_funcs, app.teardown_websocket_funcs)

    def add_url_rule(
        self,
        rule: str,
        endpoint: str | None = None,
        view_func: t.Callable[..., t.Any] | None = None,
        provide_automatic_options: bool | None = None,
        **options: t.Any,
    ) -> None:
        if endpoint and "." in endpoint:
            raise ValueError("'endpoint' may not contain a dot '.' character.")
        if view_func and hasattr(view_func, "__name__") and "." in view_func.__name__:
            raise ValueError("'view_func' name may not contain a dot '.' character.")
        self.record(
            lambda s: s.add_url_rule(
                rule, endpoint, view_func, provide_automatic_options=provide_automatic_options, **options
            )
        )

    def _app_hook(self, attribute: str, f: F) -> F:
        self.record_once(lambda s: getattr(s.app, attribute)[None].append(f))
        return f

    def before_app_request(self, f: F) -> F:
        """Like ``before_request``, for every request of the app."""
        return self._app_hook("before_request_funcs", f)

    def after_app_request(self, f: F) -> F:
        return self._app_hook("after_request_funcs", f)

    def teardown_app_request(self, f: F) -> F:
        return self._app_hook("teardown_request_funcs", f)

    def app_context_processor(self, f: F) -> F:
        return self._app_hook("template_context_processors", f)

    def app_url_value_preprocessor(self, f: F) -> F:
        return self._app_hook("url_value_preprocessors", f)

    def app_url_defaults(self, f: F) -> F:
        return self._app_hook("url_default_functions", f)

    def app_errorhandler(self, code: type[Exception] | int) -> t.Callable[[F], F]:
        """Like ``errorhandler``, for errors anywhere in the app."""

        def decorator(f: F) -> F:
            self.record_once(lambda s: s.app.register_error_handler(code, f))
            return f

        return decorator

    def app_template_filter(self, name: str | None = None) -> t.Callable[[F], F]:
        """A Jinja filter for every template of the app."""
        return _registering(self.add_app_template_filter, name)

    def add_app_template_filter(self, f: t.Callable[..., t.Any], name: str | None = None) -> None:
        self.record_once(lambda s: s.app.add_template_filter(f, name=name))

    def app_template_test(self, name: str | None = None) -> t.Callable[[F], F]:
        """A Jinja test for every template of the app."""
        return _registering(self.add_app_template_test, name)

    def add_app_template_test(self, f: t.Callable[..., bool], name: str | None = None) -> None:
        self.record_once(lambda s: s.app.add_template_test(f, name=name))

    def app_template_global(self, name: str | None = None) -> t.Callable[[F], F]:
        """A Jinja global for every template of the app."""
        return _registering(self.add_app_template_global, name)

    def add_app_template_global(self, f: t.Callable[..., t.Any], name: str | None = None) -> None:
        self.record_once(lambda s: s.app.add_template_global(f, name=name))

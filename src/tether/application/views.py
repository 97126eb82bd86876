"""Class-based views: ``View`` (one ``dispatch_request``) and ``MethodView``
(a method per HTTP verb)."""

from __future__ import annotations

import typing as t

from ..contexts.globals import current_app, request

__all__ = ["MethodView", "View"]

http_method_funcs = frozenset(["get", "post", "head", "options", "delete", "put", "trace", "patch"])


class View:
    """Subclass, implement ``dispatch_request``, register ``as_view(name)``."""

    methods: t.ClassVar[t.Collection[str] | None] = None
    provide_automatic_options: t.ClassVar[bool | None] = None
    decorators: t.ClassVar[list[t.Callable[..., t.Any]]] = []
    init_every_request: t.ClassVar[bool] = True

    def dispatch_request(self) -> t.Any:
        raise NotImplementedError(f"{type(self).__name__} must implement 'dispatch_request'.")

    @classmethod
    def as_view(cls, name: str, *class_args: t.Any, **class_kwargs: t.Any) -> t.Callable[..., t.Any]:
        if cls.init_every_request:

            def view(**kwargs: t.Any) -> t.Any:
                self = vars(view)["view_class"](*class_args, **class_kwargs)
                return current_app.ensure_sync(self.dispatch_request)(**kwargs)
        else:
            self = cls(*class_args, **class_kwargs)

            def view(**kwargs: t.Any) -> t.Any:
                return current_app.ensure_sync(self.dispatch_request)(**kwargs)

        # Named before decorating, as Flask does: a decorator may key on the view's
        # name (Flask-Limiter's limits do).
        view.__name__ = name
        view.__module__ = cls.__module__
        for decorator in cls.decorators:
            view = decorator(view)
        vars(view).update(
            view_class=cls, methods=cls.methods, provide_automatic_options=cls.provide_automatic_options
        )
        view.__name__ = name
        view.__doc__ = cls.__doc__
        view.__module__ = cls.__module__
        return view


class MethodView(View):
    """Dispatches to the method named after the request's HTTP verb (``get``, ``post``, ...)."""

    def __init_subclass__(cls, **kwargs: t.Any) -> None:
        super().__init_subclass__(**kwargs)
        if "methods" not in cls.__dict__:
            methods = set()
            for base in cls.__bases__:
                base_methods = getattr(base, "methods", None)
                if base_methods:
                    methods.update(base_methods)
            for key in http_method_funcs:
                if hasattr(cls, key):
                    methods.add(key.upper())
            if methods:
                cls.methods = methods

    def dispatch_request(self, **kwargs: t.Any) -> t.Any:
        meth = getattr(self, request.method.lower(), None)
        if meth is None and request.method == "HEAD":
            meth = getattr(self, "get", None)
        assert meth is not None, f"Unimplemented method {request.method!r}"
        return current_app.ensure_sync(meth)(**kwargs)

"""Describe Flask's surface as one JSON document: ``python surface_probe.py flask``
reads the installed Flask, ``python surface_probe.py tether`` reads tether under
``alias_flask()``. tests/test_surface.py runs both (each in a process of its own,
so neither sees the other's modules) and compares them key by key.

Keys are ``kind:path`` (``module:flask.cli``, ``name:flask.cli.click``,
``member:flask.app.Flask.wsgi_app``, ``instance:flask.ctx.RequestContext._session``,
``jinja:globals.url_for``, ``signal:request_started.kwargs``); values say what is
there (its kind, its signature) so that a difference reads as one line.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import sys
import types
import typing as t

#: Flask's module list, read from the real Flask by the "flask" run and handed to
#: the "tether" run, so both walk the same modules.
PRIMITIVES = (bool, int, float, str, bytes, type(None))


def flask_modules() -> list[str]:
    import flask

    found = [m.name for m in pkgutil.walk_packages(flask.__path__, "flask.") if not m.name.endswith("__main__")]
    return ["flask", *sorted(found)]


def default(value: t.Any) -> str:
    """A default as comparable text: primitives by value, others by type (a sentinel
    ``object()`` has a different address in each process)."""
    if isinstance(value, PRIMITIVES):
        return repr(value)
    if isinstance(value, (tuple, list, frozenset, set)) and all(isinstance(v, PRIMITIVES) for v in value):
        return repr(value)
    return f"<{type(value).__name__}>"


def signature(value: t.Any) -> str:
    """Parameter names, kinds and defaults; annotations left out (they are text
    in one, objects in the other, and no caller depends on them)."""
    try:
        sig = inspect.signature(value)
    except (TypeError, ValueError):
        return "(?)"
    parts = []
    for p in sig.parameters.values():
        text = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name
        if p.default is not p.empty:
            text += "=" + default(p.default)
        parts.append((p.kind, text))
    out, slash, star = [], False, False
    for kind, text in parts:
        if kind != inspect.Parameter.POSITIONAL_ONLY and not slash and any(k == kind.POSITIONAL_ONLY for k, _ in parts):
            out.append("/")
            slash = True
        if kind == inspect.Parameter.KEYWORD_ONLY and not star:
            out.append("*")
            star = True
        if kind == inspect.Parameter.VAR_POSITIONAL:
            star = True
        out.append(text)
    if not slash and parts and all(k == inspect.Parameter.POSITIONAL_ONLY for k, _ in parts):
        out.append("/")
    return "(" + ", ".join(out) + ")"


def describe(value: t.Any) -> str:
    """What a module-level name is."""
    if isinstance(value, types.ModuleType):
        return "module " + value.__name__
    if inspect.isclass(value):
        return "class"
    if callable(value) and (inspect.isfunction(value) or inspect.isbuiltin(value) or inspect.ismethod(value)):
        return "function" + signature(value)
    if isinstance(value, PRIMITIVES):
        return "value " + repr(value)
    return "object"


def describe_member(cls: type, name: str) -> str:
    """What a class member is, read without running descriptors."""
    raw = inspect.getattr_static(cls, name)
    if isinstance(raw, staticmethod):
        return "staticmethod" + signature(raw.__func__)
    if isinstance(raw, classmethod):
        return "classmethod" + signature(raw.__func__)
    if isinstance(raw, property):
        return "property" + ("+setter" if raw.fset else "")
    if inspect.isfunction(raw):
        return "method" + signature(raw)
    if inspect.isclass(raw):
        return "class"
    if hasattr(type(raw), "__get__") and not callable(raw):
        return "descriptor" + ("+setter" if hasattr(type(raw), "__set__") else "")
    if isinstance(raw, PRIMITIVES) and raw is not None:  # None is a placeholder for what __init__ sets
        return "attribute " + repr(raw)
    return "attribute"


def class_members(cls: type, probes: list[t.Any]) -> dict[str, str]:
    """Every name the class has beyond ``object``'s, underscore names included
    (``_got_first_request``, ``_get_exc_class_and_code``)."""
    skip = set(dir(object)) | {"__dict__", "__weakref__", "__module__", "__annotations__", "__slots__",
                               "__parameters__", "__orig_bases__", "__firstlineno__", "__static_attributes__"}
    names = {n for n in dir(cls) if n not in skip}
    names |= {n for n in ("__init__", "__call__", "__enter__", "__exit__", "__repr__") if n in vars(cls) or any(
        n in vars(base) for base in cls.__mro__[:-1])}
    members = {n: describe_member(cls, n) for n in sorted(names)}
    for probe in (p for p in probes if isinstance(p, cls)):
        members.update({n: "attribute" for n in set_attributes(probe) if n not in members})
    return members


def surface(plan: dict[str, t.Any]) -> tuple[dict[str, str], dict[str, t.Any]]:
    """Describe every module of ``plan`` and the names it lists for it (under the
    alias, Flask's names, read with ``getattr`` as importing code does), and walk
    each Flask class once, at the first place Flask's modules expose it (under
    the alias, at the places Flask's run walked)."""
    out: dict[str, str] = {}
    walked: dict[int, str] = {}
    probes = list(instances().values())
    for name, attributes in plan["modules"].items():
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        out[f"module:{name}"] = "module"
        for attr in attributes or sorted(a for a in vars(module) if not a.startswith("__")):
            try:
                value = getattr(module, attr)
            except (AttributeError, ImportError):
                continue
            out[f"name:{name}.{attr}"] = describe(value)
            path = f"{name}.{attr}"
            if inspect.isclass(value) and (path in plan["classes"] if attributes else _is_flasks(value)):
                if walked.setdefault(id(value), path) == path:
                    out.update({f"member:{path}.{m}": what for m, what in class_members(value, probes).items()})
    names: dict[str, list[str]] = {}
    for key in out:
        if key.startswith("name:"):
            module_name, _, attr = key[5:].rpartition(".")
            names.setdefault(module_name, []).append(attr)
    return out, {"modules": names, "classes": sorted(set(walked.values()))}


def _is_flasks(cls: type) -> bool:
    """Flask's own classes (and tether's standing for them) are walked; the
    Werkzeug, click and Jinja classes Flask re-exports are the same on both."""
    return cls.__module__.split(".")[0] in ("flask", "tether")


def instances() -> dict[str, t.Any]:
    """One of each object Flask makes, built the cheap way, to read the
    attributes their ``__init__`` sets."""
    import flask
    from flask.ctx import _AppCtxGlobals
    from flask.json.provider import DefaultJSONProvider
    from flask.json.tag import TaggedJSONSerializer
    from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

    app = flask.Flask("probe")
    app.secret_key = "probe"
    request_ctx = app.test_request_context("/")
    return {
        "flask.app.Flask": app,
        "flask.blueprints.Blueprint": flask.Blueprint("bp", "probe"),
        "flask.ctx.AppContext": app.app_context(),
        "flask.ctx.RequestContext": request_ctx,
        "flask.ctx._AppCtxGlobals": _AppCtxGlobals(),
        "flask.wrappers.Request": request_ctx.request,
        "flask.wrappers.Response": app.response_class(),
        "flask.config.Config": app.config,
        "flask.sessions.SecureCookieSession": SecureCookieSession(),
        "flask.sessions.SecureCookieSessionInterface": SecureCookieSessionInterface(),
        "flask.json.provider.DefaultJSONProvider": DefaultJSONProvider(app),
        "flask.json.tag.TaggedJSONSerializer": TaggedJSONSerializer(),
        "flask.testing.FlaskClient": app.test_client(),
        "flask.testing.FlaskCliRunner": app.test_cli_runner(),
        "flask.testing.EnvironBuilder": flask.testing.EnvironBuilder(app, "/"),
        "flask.templating.Environment": app.jinja_env,
        "flask.templating.DispatchingJinjaLoader": app.jinja_env.loader,
        "flask.cli.ScriptInfo": flask.cli.ScriptInfo(),
        "flask.cli.FlaskGroup": flask.cli.FlaskGroup(),
    }


def set_attributes(obj: t.Any) -> set[str]:
    """The attributes an instance holds: its ``__dict__`` and its filled slots."""
    slots = {s for cls in type(obj).__mro__ for s in _slots(cls) if not s.startswith("__")}
    return set(getattr(obj, "__dict__", {})) | {s for s in slots if hasattr(obj, s)}


def _slots(cls: type) -> tuple[str, ...]:
    slots = vars(cls).get("__slots__", ())
    return (slots,) if isinstance(slots, str) else tuple(slots)


def instance_attributes() -> dict[str, str]:
    out = {}
    for path, obj in instances().items():
        for attr in sorted(set_attributes(obj)):
            out[f"instance:{path}.{attr}"] = "attribute"
    return out


def run(plan: dict[str, t.Any] | None) -> tuple[dict[str, str], dict[str, t.Any]]:
    """Flask's surface (no ``plan``), or tether's under the alias at the places
    ``plan`` (Flask's modules and names) lists."""
    if plan is not None:
        from tether.compat import alias_flask

        alias_flask()
    from surface_behaviour import jinja_surface, signal_surface

    out, names = surface(plan or {"modules": {name: [] for name in flask_modules()}})
    out.update(instance_attributes())
    out.update(jinja_surface())
    out.update(signal_surface())
    return out, names


if __name__ == "__main__":
    found, plan = run(json.load(sys.stdin) if sys.argv[1:] == ["tether"] else None)
    json.dump({"surface": found, "plan": plan}, sys.stdout)

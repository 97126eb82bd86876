"""Where tether under ``alias_flask()`` differs from Flask's surface, each with
its reason (tests/test_surface.py). Keys are surface_probe.py's, ``fnmatch``
patterns allowed.

:data:`ON_PURPOSE` reasons are kept: the "differs on purpose" list of
docs/coming-from-flask.md has each of them word for word. :data:`PENDING` reasons are not: they name work not
done yet, and what is missing.
"""

from __future__ import annotations

CALL = ("One app object serves WSGI and ASGI: `app(environ, start_response)` and `app(scope, receive, send)` "
        "(also by keyword, as daphne calls it).")
LAZY = ("A context's `g`, `url_adapter` and the request context's `_session` are made on first use, so they "
        "are not in the context's `__dict__` until read; reading them (and assigning `_session`) works as in Flask.")
CACHED = ("`app.name`, `app.logger`, `app.jinja_env` and `jinja_loader` are `functools.cached_property`, not Werkzeug's "
          "(a `property` subclass run on every read); reading, assigning and deleting them work as in Flask.")
TOKENS = "Contexts keep their own stack of pushes (contexts follow the code), not Flask's private `_cv_tokens`."
MESSAGES = ("Using a proxy outside its context raises an error naming the proxy and what to do, so Flask's fixed "
            "texts `flask.globals._no_app_msg` and `_no_req_msg` are not there.")
CLIENT = ("The test client takes `asgi=True` to send requests through the ASGI app, and "
          "`app.test_client_class`/`test_cli_runner_class` are tether's classes rather than `None`.")
ENV = "`Config.from_prefixed_env()` with no prefix reads `FLASK_` variables, then `TETHER_` ones (which win)."

REQUEST = ("A request's URL match (`url_rule`, `view_args`, `routing_exception`), `headers` and `host` are made "
           "on first use, not in `__init__`, so they are not in its `__dict__` until read; reading and assigning "
           "them work as in Flask.")

#: Differences kept, each a sentence of docs/coming-from-flask.md.
ON_PURPOSE = [CALL, LAZY, REQUEST, CACHED, TOKENS, MESSAGES, CLIENT, ENV]

#: Differences to remove, each reason saying what is missing ("not fixed yet: ..."):
#: none left.
PENDING: list[str] = []

ALLOWED: dict[str, str] = {
    # on purpose
    "member:flask.Flask.__call__": CALL,
    "member:flask.Request.url_rule": REQUEST,
    "member:flask.Request.view_args": REQUEST,
    "member:flask.Request.routing_exception": REQUEST,
    "member:flask.Request.headers": REQUEST,
    "instance:flask.wrappers.Request.headers": REQUEST,
    "instance:flask.wrappers.Request.host": REQUEST,
    "instance:flask.wrappers.Request.json_module": REQUEST,
    "member:flask.app.AppContext.g": LAZY,
    "member:flask.app.AppContext.url_adapter": LAZY,
    "member:flask.app.RequestContext.url_adapter": LAZY,
    "member:flask.app.RequestContext._session": LAZY,
    "instance:flask.ctx.RequestContext._session": LAZY,
    "instance:flask.ctx.AppContext.g": LAZY,
    "instance:flask.ctx.*.url_adapter": LAZY,
    "member:*.jinja_env": CACHED,
    "member:*.jinja_loader": CACHED,
    "member:*.logger": CACHED,
    "member:flask.Flask.name": CACHED,
    "member:flask.app.App.name": CACHED,
    "*._cv_tokens": TOKENS,
    "name:flask.globals._no_*_msg": MESSAGES,
    "member:flask.testing.FlaskClient.__init__": CLIENT,
    "member:*.test_client_class": CLIENT,
    "member:*.test_cli_runner_class": CLIENT,
    "member:flask.Config.from_prefixed_env": ENV,
}

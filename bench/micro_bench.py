"""The pieces tether writes by hand, against the library versions they replace.

    python bench/micro_bench.py

Each case reports the median of several ``timeit`` rounds in µs (ns for the proxy).
"""

from __future__ import annotations

import statistics
import timeit
import types
import typing as t
from contextvars import ContextVar

from werkzeug.routing import Map, Rule
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request as WerkzeugRequest
from werkzeug.wrappers import Response as WerkzeugResponse

from tether import Response, Tether
from tether import request as tether_request
from tether.application.routing import FastRouter
from tether.application.wrappers import Request as TetherRequest


class _GetattrProxy:
    """The ``__getattr__`` design tether's proxy avoids, for comparison."""

    __slots__ = ("_get",)

    def __init__(self, get: object) -> None:
        object.__setattr__(self, "_get", get)

    def __getattr__(self, name: str) -> object:
        return getattr(self._get(), name)


def median_time(stmt: str, env: dict[str, object], number: int, scale: float) -> float:
    return statistics.median(timeit.repeat(stmt, number=number, repeat=7, globals=env)) / number * scale


def main() -> None:
    environ = EnvironBuilder(path="/user/42", query_string="q=x").get_environ()
    # The real thing: tether's ``request`` proxy inside a pushed request context,
    # against the attribute of the same request object.
    ctx = Tether(__name__).request_context(environ)
    ctx.push()
    request = ctx.request
    request.args  # noqa: B018 - cache it: the proxy case measures lookup, not parsing
    var: ContextVar[t.Any] = ContextVar("request_ctx")
    var.set(types.SimpleNamespace(request=request))
    url_map = Map([Rule("/", endpoint="index", methods=["GET"]), Rule("/user/<int:id>", endpoint="user", methods=["GET"])])
    adapter = url_map.bind("localhost", "/")
    env = {
        "request": request,
        "proxy": tether_request,
        "getattr_proxy": _GetattrProxy(lambda: var.get().request),
        "adapter": adapter,
        "router": FastRouter(url_map),
        "Response": Response,
        "WerkzeugResponse": WerkzeugResponse,
        "WerkzeugRequest": WerkzeugRequest,
        "TetherRequest": TetherRequest,
        "environ": environ,
        "headers": {"Content-Type": "text/plain; charset=utf-8"},
    }
    cases = [
        ("proxy: request.args (ns)", "request.args", "getattr_proxy.args", "proxy.args", 1e9, 200_000),
        ("route /  (µs)", "adapter.match('/', 'GET', return_rule=True)", None, "router.match('/', 'GET')", 1e6, 50_000),
        ("route /user/42  (µs)", "adapter.match('/user/42', 'GET', return_rule=True)", None,
         "router.match('/user/42', 'GET')", 1e6, 50_000),
        ("Response('Hello')  (µs)", "WerkzeugResponse('Hello', mimetype='text/html')", None, "Response('Hello')", 1e6, 50_000),
        ("args for q=x  (µs)", "WerkzeugRequest(environ).args", None, "TetherRequest(environ).args", 1e6, 50_000),
        ("Request(environ)  (µs)", "WerkzeugRequest(environ)", None, "TetherRequest(environ)", 1e6, 50_000),
        ("Response(s, headers)  (µs)", "WerkzeugResponse('Hello', 200, headers, mimetype='text/html')", None,
         "Response('Hello', 200, headers)", 1e6, 50_000),
    ]
    print(f"{'case':<28}{'library':>10}{'__getattr__':>13}{'tether':>10}{'ratio':>8}")
    for name, library, alternative, ours, scale, number in cases:
        base = median_time(library, env, number, scale)
        alt = median_time(alternative, env, number, scale) if alternative else None
        mine = median_time(ours, env, number, scale)
        alt_text = f"{alt:>13.2f}" if alt is not None else f"{'':>13}"
        print(f"{name:<28}{base:>10.2f}{alt_text}{mine:>10.2f}{mine / base:>7.2f}x")


if __name__ == "__main__":
    main()

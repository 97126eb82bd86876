"""The apps ``bench/server_bench.py`` serves, by import string: the same
endpoints as the in-process benches (``asgi_bench``, ``wsgi_bench``)."""

from __future__ import annotations

import flask
from asgi_bench import build_fastapi, build_litestar, build_quart, build_starlette, build_tether
from wsgi_bench import build, raw_wsgi  # noqa: F401 (raw_wsgi: served by its import string)

import tether

tether_async = build_tether(sync=False)
tether_sync = build_tether(sync=True)
starlette_app = build_starlette()
fastapi_app = build_fastapi()
litestar_app = build_litestar()
quart_app = build_quart()
tether_wsgi = build(tether, tether.Tether)
flask_wsgi = build(flask, flask.Flask)


async def raw_asgi(scope: dict, receive: object, send: object) -> None:
    """No framework: the ceiling uvicorn itself allows."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain; charset=utf-8")]})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b"Hello, World!"})  # type: ignore[operator]

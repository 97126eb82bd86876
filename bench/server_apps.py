"""The apps ``bench/server_bench.py`` serves, by import string: the same
endpoints as the in-process benches (``asgi_bench``, ``wsgi_bench``)."""

from __future__ import annotations

import flask
from asgi_bench import build_quart, build_starlette, build_tether
from wsgi_bench import build

import tether

tether_async = build_tether(sync=False)
tether_sync = build_tether(sync=True)
starlette_app = build_starlette()
quart_app = build_quart()
tether_wsgi = build(tether, tether.Tether)
flask_wsgi = build(flask, flask.Flask)

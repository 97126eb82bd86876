"""tether's hand-written replacements of Werkzeug pieces, each checked against
the piece it replaces on generated input: the ASGI request against Werkzeug's
request over the environ a WSGI server makes of the same request, the
response-header encoders against ``get_wsgi_headers``, and ``LocalProxy``
against Werkzeug's on the operations apps use. (The router is checked in
tests/test_routing.py, the request and response constructors in
tests/test_wrappers.py.)"""

from __future__ import annotations

import copy
import io
import math
import operator
import os
import pickle
import typing as t
from contextvars import ContextVar

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import Headers
from werkzeug.local import LocalProxy as WerkzeugProxy
from werkzeug.wrappers import Request as WerkzeugRequest
from werkzeug.wrappers import Response as WerkzeugResponse

from differential_app import ENVIRON_KEYS
from differential_wire import Wire, asgi_scope, wires, wsgi_environ
from tether.application.wrappers import Request, Response
from tether.locals import LocalProxy
from tether.serving.asgi_request import request_from_scope
from tether.serving.headers import asgi_headers, wsgi_headers

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

REQUEST_FIELDS = (
    "method", "scheme", "server", "root_path", "path", "full_path", "query_string", "remote_addr", "url",
    "base_url", "url_root", "host", "host_url", "content_type", "content_length", "mimetype", "mimetype_params",
    "is_json", "is_secure",
)


def seen(request: t.Any) -> dict[str, t.Any]:
    """What an app reads of a request, or the error reading it raises."""
    out: dict[str, t.Any] = {}
    readers: dict[str, t.Callable[[], t.Any]] = {
        **{field: (lambda field=field: getattr(request, field)) for field in REQUEST_FIELDS},  # type: ignore[misc]
        "headers": lambda: list(request.headers.items()),
        "args": lambda: list(request.args.lists()),
        "cookies": lambda: list(request.cookies.lists()),
        "form": lambda: list(request.form.lists()),
        "files": lambda: [(k, [(f.filename, f.read()) for f in v]) for k, v in request.files.lists()],
        "json": lambda: request.get_json(silent=True),
        "environ": lambda: {k: request.environ.get(k) for k in ENVIRON_KEYS}
        | {k: v for k, v in request.environ.items() if k.startswith("HTTP_")},
    }
    for name, read in readers.items():
        try:
            out[name] = read()
        except Exception as e:  # noqa: BLE001 - the same error is what must match
            out[name] = type(e)
    return out


@SETTINGS
@given(wire=wires())
def test_the_requests_are_werkzeugs_request_of_the_wsgi_environ(wire: Wire) -> None:
    """tether's WSGI request and its ASGI request of the same request read as Werkzeug's."""
    expected = seen(WerkzeugRequest(wsgi_environ(wire)))
    assert seen(Request(wsgi_environ(wire))) == expected
    ours, _ = request_from_scope(Request, asgi_scope(wire), io.BytesIO(wire.body))
    assert seen(ours) == expected


@SETTINGS
@given(wire=wires())
@example(wire=Wire("POST", "/", b"", (("Content-Type", ""), ("Content-Length", ""), ("Transfer-Encoding", "")), b""))
@example(wire=Wire("POST", "/", b"", (("Content-Type", "a/b"), ("content-type", "text/plain")), b""))
def test_headers_read_one_by_one_are_werkzeugs(wire: Wire) -> None:
    """An ASGI request reads ``Content-Type``, ``Content-Length`` and
    ``Transfer-Encoding`` from its scope one by one while its headers are not
    made (``ScopeSource.header``): what Werkzeug reads from the whole headers."""
    expected = WerkzeugRequest(wsgi_environ(wire))
    for field in ("mimetype", "content_length", "is_json"):
        ours, _ = request_from_scope(Request, asgi_scope(wire), io.BytesIO(wire.body))
        assert getattr(ours, field) == getattr(expected, field)
        assert "headers" not in ours.__dict__ and "environ" not in ours.__dict__
    for name in ("Content-Type", "Content-Length", "Transfer-Encoding"):
        ours, _ = request_from_scope(Request, asgi_scope(wire), io.BytesIO(wire.body))
        key = name.upper().replace("-", "_")
        assert ours._header(name, key if key.startswith("CONTENT") else f"HTTP_{key}") == expected.headers.get(name)


# The response-header encoders against Werkzeug's get_wsgi_headers.
STATUSES = st.sampled_from([200, 201, 204, 206, 301, 302, 304, 307, 404, 500, 101, 199])
HEADER_LINES = st.lists(
    st.tuples(
        st.sampled_from(["Content-Type", "content-length", "Location", "location", "Content-Location", "X-A",
                         "Set-Cookie", "ETag", "Content-Encoding"]),
        st.sampled_from(["/here", "http://other.test/x", "relative/é", "12", "0", "text/plain", "v", "a=b", ""]),
    ),
    max_size=5,
)


@SETTINGS
@given(
    status=STATUSES, lines=HEADER_LINES, streamed=st.booleans(), autocorrect=st.booleans(), body=st.binary(max_size=20),
    method=st.sampled_from(["GET", "HEAD", "POST"]),
)
def test_the_header_encoders_give_werkzeugs_headers(
    status: int, lines: list[tuple[str, str]], streamed: bool, autocorrect: bool, body: bytes, method: str
) -> None:
    def make() -> Response:
        response = Response(iter([body]) if streamed else body, status)
        for name, value in lines:
            response.headers.add(name, value)
        response.autocorrect_location_header = autocorrect
        return response

    environ = wsgi_environ(Wire(method, "/a/b", b"q=1", (("Host", "example.test:8080"),), b""))
    expected = WerkzeugResponse.get_wsgi_headers(make(), environ).to_wsgi_list()
    assert wsgi_headers(make(), dict(environ), status) == expected
    request = Request(dict(environ))
    assert asgi_headers(make(), request, status) == [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in expected]


# LocalProxy against Werkzeug's on the operations apps use, on several kinds of value.
class Thing:
    """An object with attributes, a call and a context-manager protocol."""

    def __init__(self) -> None:
        self.x = 1

    def __call__(self, *args: t.Any) -> tuple[t.Any, ...]:
        return args

    def __enter__(self) -> str:
        return "entered"

    def __exit__(self, *exc: object) -> None:
        return None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Thing) and other.x == self.x

    def __hash__(self) -> int:
        return self.x

    def __repr__(self) -> str:
        return f"Thing({self.x})"


OPERATIONS: dict[str, t.Callable[[t.Any], t.Any]] = {
    "bool": bool, "str": str, "repr_type": lambda p: type(repr(p)), "len": len, "iter": lambda p: list(iter(p)),
    "reversed": lambda p: list(reversed(p)), "contains": lambda p: 1 in p, "getitem": lambda p: p[0],
    "getkey": lambda p: p["k"], "eq": lambda p: p == [1, 2], "ne": lambda p: p != 3, "lt": lambda p: p < 5,
    "ge": lambda p: p >= 2, "hash": hash, "add": lambda p: p + p, "radd": lambda p: [0] + p,
    "sub": lambda p: p - 1, "rsub": lambda p: 10 - p, "mul": lambda p: p * 2, "rmul": lambda p: 3 * p,
    "truediv": lambda p: p / 2, "floordiv": lambda p: p // 2, "mod": lambda p: p % 3, "pow": lambda p: p**2,
    "rpow": lambda p: 2**p, "neg": operator.neg, "abs": abs, "invert": operator.invert, "int": int, "float": float,
    "index": lambda p: [0, 1, 2, 3, 4][p], "round": round, "floor": math.floor, "format": lambda p: f"{p}",
    "and": lambda p: p & 1, "or": lambda p: p | 1, "xor": lambda p: p ^ 1, "lshift": lambda p: p << 1,
    "attribute": lambda p: p.x, "missing_attribute": lambda p: p.missing, "call": lambda p: p(1, 2),
    "with": lambda p: p.__enter__(), "isinstance_list": lambda p: isinstance(p, list),
    "isinstance_dict": lambda p: isinstance(p, dict), "class": lambda p: p.__class__,
    "dir_has_x": lambda p: "x" in dir(p), "copy": lambda p: copy.copy(p), "deepcopy": lambda p: copy.deepcopy(p),
    "get": lambda p: p.get("k"), "keys": lambda p: list(p.keys()), "upper": lambda p: p.upper(),
    "pickle": lambda p: pickle.loads(pickle.dumps(p)),
}


def setattr_then_read(p: t.Any) -> t.Any:
    p.y = 2
    return p.y


def setitem_then_read(p: t.Any) -> t.Any:
    p[0] = 9
    return p[0]


def iadd(p: t.Any) -> t.Any:
    before = p
    p += [3]
    return p is before, list(p)


OPERATIONS |= {"setattr": setattr_then_read, "setitem": setitem_then_read, "iadd": iadd}
VALUES: dict[str, t.Callable[[], t.Any]] = {
    "list": lambda: [1, 2], "dict": lambda: {"k": "v"}, "int": lambda: 4, "float": lambda: 2.5, "str": lambda: "ab",
    "thing": Thing, "none": lambda: None,
}


#: Where tether's proxy differs from Werkzeug's on purpose (docs/coming-from-flask.md, "differs on purpose"):
#: a proxy pickles as the object it stands for (Werkzeug's raises PicklingError),
#: and copying a proxy to ``None`` gives ``None``, as copying ``None`` does
#: (Werkzeug's raises TypeError, or deep-copies to ``{}``).
ON_PURPOSE = {(value, "pickle") for value in VALUES} | {("none", "copy"), ("none", "deepcopy")}


def outcome(proxy_class: type[t.Any], value: t.Callable[[], t.Any], operation: t.Callable[[t.Any], t.Any]) -> t.Any:
    var: ContextVar[t.Any] = ContextVar("value")
    var.set(value())
    try:
        return operation(proxy_class(var))
    except Exception as e:  # noqa: BLE001 - the same error is what must match
        return type(e)


def test_every_operation_and_value_is_compared() -> None:
    """Every operation on every kind of value: the same result or the same error."""
    differing = [
        (value, operation)
        for value in VALUES
        for operation in OPERATIONS
        if (value, operation) not in ON_PURPOSE and outcome(LocalProxy, VALUES[value], OPERATIONS[operation])
        != outcome(WerkzeugProxy, VALUES[value], OPERATIONS[operation])
    ]
    assert differing == []
    for value, operation in ON_PURPOSE:  # and each deliberate difference is still one, with Python's answer
        assert outcome(LocalProxy, VALUES[value], OPERATIONS[operation]) == OPERATIONS[operation](VALUES[value]())
        assert outcome(WerkzeugProxy, VALUES[value], OPERATIONS[operation]) != OPERATIONS[operation](VALUES[value]())


def test_headers_and_values_are_not_shared_between_requests() -> None:
    wire = Wire("GET", "/", b"", (("Host", "h"), ("X-A", "1")), b"")
    first, _ = request_from_scope(Request, asgi_scope(wire), io.BytesIO())
    second, _ = request_from_scope(Request, asgi_scope(wire), io.BytesIO())
    first.headers.add("X-B", "2")
    assert list(second.headers) == [("Host", "h"), ("X-A", "1")]
    assert isinstance(second.headers, Headers)

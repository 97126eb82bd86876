"""The context layer: app and request contexts, nesting, teardown, g, signals, errors."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import weakref
from collections.abc import Callable

import pytest
from werkzeug.test import EnvironBuilder

import tether
from tether import ContextError, current_app, g, request, session
from tether.contexts.ctx import AppContext, RequestContext


def test_app_context_makes_current_app_and_g(app: tether.Tether) -> None:
    assert not tether.has_app_context()
    with app.app_context() as ctx:
        assert tether.has_app_context()
        assert current_app._get_current_object() is app
        assert isinstance(ctx, AppContext)
        g.x = 1
        assert g.x == 1
    assert not tether.has_app_context()


def test_nested_contexts_of_the_same_app_are_separate(app: tether.Tether) -> None:
    with app.app_context():
        g.level = "outer"
        with app.app_context():
            assert "level" not in g
            g.level = "inner"
        assert g.level == "outer"


def test_one_app_context_pushed_three_times_tears_down_once_at_its_outermost_pop(app: tether.Tether) -> None:
    torn: list[str] = []
    popped: list[str] = []
    app.teardown_appcontext(lambda exc: torn.append(g.get("mark", "")))
    ctx = app.app_context()
    with tether.signals.appcontext_popped.connected_to(lambda sender: popped.append("popped"), app):
        ctx.push()
        g.mark = "set"
        ctx.push()
        ctx.push()
        ctx.pop()
        ctx.pop()
        assert torn == [] and current_app._get_current_object() is app
        ctx.pop()
    assert torn == ["set"] and popped == ["popped"] * 3
    assert not tether.has_app_context()
    ctx.push()  # pushed again after its pop: a fresh outermost push
    ctx.pop()
    assert torn == ["set", "set"] and not tether.has_app_context()


def test_nested_contexts_of_two_apps(app: tether.Tether) -> None:
    other = tether.Tether("other")
    seen = []
    with app.test_request_context("/outer"):
        seen.append((current_app.name, request.path))
        with other.test_request_context("/inner"):
            seen.append((current_app.name, request.path))
            with app.app_context():
                seen.append((current_app.name, request.path))
            seen.append((current_app.name, request.path))
        seen.append((current_app.name, request.path))
    assert seen == [
        ("test_app", "/outer"),
        ("other", "/inner"),
        ("test_app", "/inner"),
        ("other", "/inner"),
        ("test_app", "/outer"),
    ]


def test_request_context_pushes_and_pops_app_context(app: tether.Tether) -> None:
    ctx = app.test_request_context("/")
    ctx.push()
    assert current_app._get_current_object() is app
    ctx.pop()
    assert not tether.has_app_context()
    with app.app_context() as app_ctx:
        with app.test_request_context("/"):
            assert tether.contexts.ctx._cv_app.get() is app_ctx
        assert tether.contexts.ctx._cv_app.get() is app_ctx


def test_popping_the_wrong_context_names_both(app: tether.Tether) -> None:
    outer = app.app_context()
    inner = app.app_context()
    outer.push()
    inner.push()
    with pytest.raises(RuntimeError, match="Popped the wrong app context") as info:
        outer.pop()
    assert repr(outer) in str(info.value) and repr(inner) in str(info.value)
    inner.pop()
    outer.pop()
    req1 = app.test_request_context("/a")
    req2 = app.test_request_context("/b")
    req1.push()
    req2.push()
    with pytest.raises(RuntimeError, match="Popped the wrong request context.*/a.*/b"):
        req1.pop()
    req2.pop()
    req1.pop()
    assert not tether.has_request_context()


def test_teardown_runs_once_on_outermost_pop_in_reverse_order(app: tether.Tether) -> None:
    calls: list[tuple[str, object]] = []
    app.teardown_request(lambda exc: calls.append(("request-1", exc)))
    app.teardown_request(lambda exc: calls.append(("request-2", exc)))
    app.teardown_appcontext(lambda exc: calls.append(("app-1", exc)))
    app.teardown_appcontext(lambda exc: calls.append(("app-2", exc)))
    ctx = app.test_request_context("/")
    ctx.push()
    ctx.push()
    ctx.pop()
    assert calls == []
    ctx.pop()
    assert calls == [("request-2", None), ("request-1", None), ("app-2", None), ("app-1", None)]


def test_teardown_receives_the_exception_that_ended_the_block(app: tether.Tether) -> None:
    seen: list[object] = []
    app.teardown_request(seen.append)
    app.teardown_appcontext(seen.append)
    error = ValueError("boom")
    with pytest.raises(ValueError):
        with app.test_request_context("/"):
            raise error
    assert seen == [error, error]


def test_do_teardown_without_an_argument_passes_the_exception_being_handled(app: tether.Tether) -> None:
    seen: list[object] = []
    app.teardown_request(seen.append)
    app.teardown_appcontext(seen.append)
    error = KeyError("handled")
    with app.test_request_context("/"):
        try:
            raise error
        except KeyError:
            app.do_teardown_request()
            app.do_teardown_appcontext()
        app.do_teardown_request()  # nothing handled here: None
        app.do_teardown_request(None)
    assert seen == [error, error, None, None, None, None]  # the last two: the pop at the end of the block


def test_raising_teardown_does_not_stop_the_others(app: tether.Tether, caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    @app.teardown_request
    def first(exc: BaseException | None) -> None:
        calls.append("first")

    @app.teardown_request
    def broken(exc: BaseException | None) -> None:
        calls.append("broken")
        raise KeyError("teardown failed")

    @app.teardown_appcontext
    def app_teardown(exc: BaseException | None) -> None:
        calls.append("app")

    ctx = app.test_request_context("/")
    ctx.push()
    with caplog.at_level(logging.ERROR), pytest.raises(KeyError, match="teardown failed"):
        ctx.pop()
    assert calls == ["broken", "first", "app"]
    assert "Error in teardown_request function" in caplog.text
    assert not tether.has_request_context() and not tether.has_app_context()


def test_teardown_exactly_once_for_requests_with_and_without_errors(app: tether.Tether) -> None:
    seen: list[object] = []
    app.teardown_request(lambda exc: seen.append(("request", type(exc).__name__)))
    app.teardown_appcontext(lambda exc: seen.append(("app", type(exc).__name__)))
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.route("/ok")
    def ok() -> str:
        return "ok"

    @app.route("/fail")
    def fail() -> str:
        raise RuntimeError("view failed")

    client = app.test_client()
    assert client.get("/ok").status_code == 200
    assert seen == [("request", "NoneType"), ("app", "NoneType")]
    seen.clear()
    assert client.get("/fail").status_code == 500
    assert seen == [("request", "RuntimeError"), ("app", "RuntimeError")]


def test_g_namespace(app: tether.Tether) -> None:
    with app.app_context():
        assert g.get("missing") is None and g.get("missing", 1) == 1
        assert g.setdefault("a", 1) == 1 and g.setdefault("a", 2) == 1
        assert "a" in g and "b" not in g
        g.b = 2
        assert sorted(g) == ["a", "b"]
        assert g.pop("a") == 1 and g.pop("a", "gone") == "gone"
        with pytest.raises(KeyError):
            g.pop("a")
        assert repr(g) == "<tether.g of 'test_app' {'b': 2}>"


def test_lifecycle_signals(app: tether.Tether) -> None:
    events: list[str] = []

    @app.route("/")
    def index() -> str:
        events.append("view")
        return "ok"

    handlers = {
        "appcontext_pushed": lambda sender, **kw: events.append("appcontext_pushed"),
        "request_started": lambda sender, **kw: events.append("request_started"),
        "request_finished": lambda sender, response, **kw: events.append(f"request_finished {response.status_code}"),
        "request_tearing_down": lambda sender, exc, **kw: events.append("request_tearing_down"),
        "appcontext_tearing_down": lambda sender, exc, **kw: events.append("appcontext_tearing_down"),
        "appcontext_popped": lambda sender, **kw: events.append("appcontext_popped"),
    }
    for name, handler in handlers.items():
        getattr(tether, name).connect(handler, app)
    try:
        app.test_client().get("/")
    finally:
        for name, handler in handlers.items():
            getattr(tether, name).disconnect(handler, app)
    assert events == [
        "appcontext_pushed",
        "request_started",
        "view",
        "request_finished 200",
        "request_tearing_down",
        "appcontext_tearing_down",
        "appcontext_popped",
    ]


def test_got_request_exception_signal(app: tether.Tether) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False
    seen: list[BaseException] = []

    @app.route("/")
    def index() -> str:
        raise ZeroDivisionError

    def receiver(sender: object, exception: BaseException, **kw: object) -> None:
        seen.append(exception)

    with tether.got_request_exception.connected_to(receiver, app):
        assert app.test_client().get("/").status_code == 500
    assert len(seen) == 1 and isinstance(seen[0], ZeroDivisionError)


def test_has_request_context_and_after_this_request(app: tether.Tether) -> None:
    @app.route("/")
    def index() -> str:
        assert tether.has_request_context()

        @tether.after_this_request
        def add_header(response: tether.Response) -> tether.Response:
            response.headers["X-After"] = "yes"
            return response

        return "ok"

    assert app.test_client().get("/").headers["X-After"] == "yes"
    with pytest.raises(RuntimeError, match="after_this_request"):
        tether.after_this_request(lambda r: r)


def test_copy_current_request_context_in_a_thread(app: tether.Tether) -> None:
    results: list[object] = []

    @app.route("/")
    def index() -> str:
        @tether.copy_current_request_context
        def work() -> None:
            results.append((request.args["q"], current_app.name))

        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        return "ok"

    app.test_client().get("/?q=hello")
    assert results == [("hello", "test_app")]


def test_error_outside_any_context_names_proxy_and_fix() -> None:
    with pytest.raises(ContextError) as info:
        current_app.name  # noqa: B018
    message = str(info.value)
    assert "Working outside of application context" in message
    assert "`current_app`" in message and "with app.app_context():" in message
    assert info.value.situation == "no-context" and isinstance(info.value, RuntimeError)
    with pytest.raises(ContextError, match=r"`request`.*test_request_context"):
        request.args  # noqa: B018
    with pytest.raises(ContextError, match="`session`"):
        session.get("x")
    with pytest.raises(ContextError, match="`g`"):
        g.x  # noqa: B018


def test_error_in_a_thread_started_without_the_context(app: tether.Tether) -> None:
    errors: list[ContextError] = []

    def work() -> None:
        try:
            current_app.config  # noqa: B018
        except ContextError as e:
            errors.append(e)

    @app.route("/")
    def index() -> str:
        thread = threading.Thread(target=work, name="pusher")
        thread.start()
        thread.join()
        return "ok"

    app.test_client().get("/")
    message = str(errors[0])
    assert errors[0].situation == "thread"
    assert "'pusher'" in message
    assert "copy_current_request_context" in message and "with app.app_context():" in message


def test_error_in_a_task_created_without_the_context(app: tether.Tether) -> None:
    async def main() -> ContextError:
        async def job() -> None:
            request.path  # noqa: B018

        task = asyncio.get_running_loop().create_task(job(), name="feed")
        try:
            await task
        except ContextError as e:
            return e
        raise AssertionError("no error")

    error = asyncio.run(main())
    assert error.situation == "task" and "'feed'" in str(error)


def test_error_after_the_request_context_ended(app: tether.Tether) -> None:
    with app.test_request_context("/done"):
        pass
    with pytest.raises(ContextError) as info:
        request.path  # noqa: B018
    assert info.value.situation == "ended"
    assert "GET /done already ended" in str(info.value)


def test_contexts_are_isolated_across_threads(app: tether.Tether) -> None:
    barrier = threading.Barrier(4)
    seen: dict[int, str] = {}

    def work(i: int) -> None:
        with app.test_request_context(f"/thread/{i}"):
            barrier.wait()
            seen[i] = request.path

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {i: f"/thread/{i}" for i in range(4)}


def test_contexts_are_isolated_across_tasks(app: tether.Tether) -> None:
    async def work(i: int, gate: asyncio.Event) -> tuple[str, int]:
        with app.test_request_context(f"/task/{i}"):
            g.i = i
            await gate.wait()
            return request.path, g.i

    async def main() -> list[tuple[str, int]]:
        gate = asyncio.Event()
        tasks = [asyncio.create_task(work(i, gate)) for i in range(5)]
        await asyncio.sleep(0)
        gate.set()
        return await asyncio.gather(*tasks)

    assert asyncio.run(main()) == [(f"/task/{i}", i) for i in range(5)]


def test_request_context_copy_shares_request(app: tether.Tether) -> None:
    with app.test_request_context("/x?a=1") as ctx:
        copied = ctx.copy()
    assert isinstance(copied, RequestContext)
    with copied:
        assert request.args["a"] == "1" and request._get_current_object() is ctx.request


def test_routing_attributes_match_lazily(app: tether.Tether) -> None:
    @app.route("/item/<int:n>")
    def item(n: int) -> str:
        return str(n)

    with app.test_request_context("/item/5"):
        assert "url_rule" not in request.__dict__
        assert request.endpoint == "item" and request.view_args == {"n": 5}
    with app.test_request_context("/missing"):
        assert request.url_rule is None and request.routing_exception.code == 404
    assert app.request_class({"REQUEST_METHOD": "GET", "PATH_INFO": "/"}).url_rule is None


@pytest.mark.parametrize("path", ["/", "/user/7?q=x"])
def test_a_wsgi_request_is_freed_without_the_collector(path: str) -> None:
    """A WSGI server's call leaves no reference cycle through the request (the
    environ's ``werkzeug.request`` is cleared when the context pops), so the
    request is freed when the server drops the environ, not at a later collection."""
    app = tether.Tether(__name__)
    seen: list[weakref.ref[object]] = []

    @app.get("/")
    def index() -> str:
        seen.append(weakref.ref(request._get_current_object()))  # type: ignore[attr-defined]
        return "ok"

    @app.get("/user/<int:id>")
    def user(id: int) -> dict[str, object]:
        seen.append(weakref.ref(request._get_current_object()))  # type: ignore[attr-defined]
        return {"id": id, "q": request.args.get("q")}

    target, _, query = path.partition("?")
    environ = EnvironBuilder(path=target, query_string=query).get_environ()
    statuses: list[str] = []
    gc.collect()
    gc.disable()
    try:
        body = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
        chunks = list(body)
        getattr(body, "close", lambda: None)()
        assert environ["werkzeug.request"] is None
        del body, environ
        assert seen[0]() is None
    finally:
        gc.enable()
    assert statuses == ["200 OK"] and chunks


@pytest.mark.parametrize("asgi", [False, True])
def test_nothing_keeps_a_request_after_it_ended(asgi: bool) -> None:
    app = tether.Tether(__name__)
    app.config["SYNC_THREADS"] = 1
    seen: list[weakref.ref[object]] = []

    @app.get("/x")
    def view() -> str:  # sync: under ASGI it runs on the pool's one thread
        seen.append(weakref.ref(request._get_current_object()))  # type: ignore[attr-defined]
        return "ok"

    client = app.test_client(asgi=asgi)
    assert client.get("/x").data == b"ok"
    gc.collect()
    assert seen[0]() is None
    if asgi:  # unrelated code the same pool thread runs next is not told about /x
        def unrelated() -> ContextError:
            try:
                request.path  # noqa: B018
            except ContextError as e:
                return e
            raise AssertionError("no error")

        error = app.serving.executor.submit(unrelated).result()
        assert error.situation == "thread" and "/x" not in str(error)


@pytest.mark.parametrize("setup", ["plain", "teardown", "tearing_down_receiver", "inner_push", "popped_receiver", "wrong_pop"])
def test_app_context_pop_does_what_pop_steps_does(setup: str) -> None:
    """``AppContext.pop`` takes its commonest case itself (for speed): each case
    ends as driving ``pop_steps`` does: what ran, what is current, what is raised."""
    from tether.contexts.ctx import _cv_app
    from tether.contexts.steps import run

    def outcome(pop: Callable[[AppContext], None]) -> list[object]:
        app = tether.Tether(__name__)
        seen: list[object] = []
        receivers = []
        if setup == "teardown":
            app.teardown_appcontext(lambda exc: seen.append(("teardown", exc)))
        if setup in ("tearing_down_receiver", "popped_receiver"):
            signal = tether.appcontext_tearing_down if setup == "tearing_down_receiver" else tether.appcontext_popped

            def receiver(sender: object, **kwargs: object) -> None:
                seen.append(("signal", sender is app))

            receivers.append(receiver)
            signal.connect(receiver, app)
        ctx = app.app_context()
        ctx.push()
        if setup == "inner_push":
            ctx.push()
        other = app.app_context() if setup == "wrong_pop" else None
        if other is not None:
            other.push()
        try:
            pop(ctx)
        except Exception as e:
            seen.append(("raised", type(e).__name__, str(e)))
        seen.append(("current is ctx", _cv_app.get(None) is ctx))
        for target in (other, ctx, ctx):
            while target is not None and _cv_app.get(None) is target:
                target.pop()
        return seen

    def by_steps(ctx: AppContext) -> None:
        steps = ctx.pop_steps(None)
        if steps:
            run(steps)

    assert outcome(lambda ctx: ctx.pop()) == outcome(by_steps)

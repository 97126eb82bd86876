"""Under the sync driver (WSGI, and an app served through its WSGI chain), the
async steps of a request share one Context, and what they set is carried back
to the synchronous code after them, as Flask's ``ensure_sync`` (asgiref)
carries it: checked on Flask and on tether with the same app."""

from __future__ import annotations

import contextvars
import typing as t

import flask
import pytest

import tether

marker: contextvars.ContextVar[str] = contextvars.ContextVar("test.marker", default="unset")


def build(app: t.Any) -> t.Any:
    @app.before_request
    async def set_in_async_hook() -> None:
        marker.set("from the async hook")

    @app.route("/sync-view")
    def sync_view() -> str:
        return marker.get()

    @app.route("/async-view")
    async def async_view() -> str:
        return marker.get()

    return app


@pytest.mark.parametrize("make", [flask.Flask, tether.Tether], ids=["flask", "tether"])
def test_what_an_async_hook_sets_is_seen_by_the_view(make: t.Callable[[str], t.Any]) -> None:
    client = build(make(__name__)).test_client()
    assert client.get("/sync-view").text == "from the async hook"
    assert client.get("/async-view").text == "from the async hook"


def test_a_value_set_across_a_yield_stays_set_until_reset_in_its_own_context() -> None:
    """What a span made current across a ``yield`` needs: set in one chunk,
    still set in the next, reset there with its token."""
    app = tether.Tether(__name__)
    seen: list[str] = []

    @app.route("/")
    async def body() -> t.Any:
        async def chunks() -> t.AsyncIterator[str]:
            seen.append(marker.get())
            token = marker.set("across")
            yield "a"
            seen.append(marker.get())
            marker.reset(token)
            seen.append(marker.get())
            yield "b"

        return chunks()

    assert app.test_client().get("/").text == "ab"
    before = seen[0]
    assert seen == [before, "across", before] and before != "across"

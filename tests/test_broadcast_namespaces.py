"""Apps that share a Redis database never hear each other: channels, histories
and cluster locks live under the app's namespace (``BROADCAST_NAMESPACE``, by
default its import name). A plain script names the namespace it talks to, and
one that names none is refused with the fix. And any str is a channel, on
every backend alike."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from support import CHANNELS, SHARED, free_port, server_process, take
from tether import Broadcast, Tether, request
from tether.live.broadcast import namespace
from tether.live.cluster import ClusterTurns


def app_on_redis(import_name: str, **config: object) -> Tether:
    app = Tether(import_name)
    app.config.update(BROADCAST_URL=SHARED, **config)
    return app


def test_two_apps_on_one_redis_keep_their_channels_apart(token: str) -> None:
    shop, blog = app_on_redis(f"shop_{token}"), app_on_redis(f"blog_{token}")
    assert (shop.broadcast.namespace, blog.broadcast.namespace) == (f"shop_{token}", f"blog_{token}")
    with shop.broadcast.subscribe("news") as at_shop, blog.broadcast.subscribe("news") as at_blog:
        shop.broadcast.publish("news", "from shop")
        blog.broadcast.publish("news", "from blog")
        asyncio.run(shop.broadcast.apublish("news", "again from shop"))
        assert take(at_shop, 2) == ["from shop", "again from shop"]
        assert take(at_blog, 1) == ["from blog"]
        # A last message on each side: whatever crossed over was published
        # before it, so it would come first.
        shop.broadcast.publish("news", "shop done")
        blog.broadcast.publish("news", "blog done")
        assert take(at_shop, 1) == ["shop done"]
        assert take(at_blog, 1) == ["blog done"]
        assert at_shop.queued() == [] and at_blog.queued() == []
    # Each history is its own too: a resume from the start replays only the app's messages.
    with blog.broadcast.subscribe("news", last_id="0-0") as replay:
        assert take(replay, 1) == ["from blog"]


def test_a_configured_namespace_is_shared_by_the_apps_that_name_it(token: str) -> None:
    web = app_on_redis(f"web_{token}", BROADCAST_NAMESPACE=token)
    worker = app_on_redis(f"worker_{token}", BROADCAST_NAMESPACE=token)
    with web.broadcast.subscribe("jobs") as subscription:
        worker.broadcast.publish("jobs", {"done": 1})
        assert take(subscription, 1) == [{"done": 1}]


def test_a_script_names_the_apps_namespace_or_is_told_to(token: str) -> None:
    app = app_on_redis(f"shop_{token}")
    with pytest.raises(ValueError, match="needs a namespace.*BROADCAST_NAMESPACE.*import name"):
        Broadcast(SHARED)
    for bad in ("", "a:b", 3):
        with pytest.raises(ValueError, match="namespace"):
            Broadcast(SHARED, namespace=bad)  # type: ignore[arg-type]
    Broadcast("memory://")  # in-process: nothing to share, nothing to name
    with app.broadcast.subscribe("news") as subscription:
        Broadcast(SHARED, namespace=f"shop_{token}").publish("news", "from a script")
        assert take(subscription, 1) == ["from a script"]


def test_a_generic_import_name_on_a_shared_redis_is_warned_about_once(
    token: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(namespace, "_warned", set())  # as in a fresh process
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            assert app_on_redis("app").broadcast.namespace == "app"
        assert app_on_redis("app", BROADCAST_NAMESPACE=token).broadcast.namespace == token
        assert Tether("app").broadcast.namespace == "app"  # memory://: nothing shared
    warnings = [r.getMessage() for r in caplog.records if "BROADCAST_NAMESPACE" in r.getMessage()]
    assert len(warnings) == 1 and "'app'" in warnings[0] and SHARED in warnings[0]


def test_cluster_locks_of_two_namespaces_do_not_take_turns_with_each_other(token: str) -> None:
    async def main() -> list[bool]:
        turns = [
            ClusterTurns(SHARED, f"a_{token}", "app.cleanup", 30),
            ClusterTurns(SHARED, f"b_{token}", "app.cleanup", 30),
            ClusterTurns(SHARED, f"a_{token}", "app.cleanup", 30),
        ]
        try:
            return [await t.take() for t in turns]
        finally:
            for t in turns:
                await t.close()

    assert asyncio.run(main()) == [True, True, False]


def test_two_projects_cluster_services_of_one_name_each_run_every_interval(token: str, tmp_path: Path) -> None:
    """Two projects whose apps are both ``cluster_app`` with a service of the same
    name, told apart only by TETHER_BROADCAST_NAMESPACE, under real servers."""
    files = {ns: tmp_path / f"{ns}.txt" for ns in (f"a{token}", f"b{token}")}
    procs = [
        server_process(
            ["uvicorn", "--port", str(free_port()), "cluster_app:app"],
            EVENTS_FILE=str(path), SERVICE_NAME="cleanup", TETHER_BROADCAST_NAMESPACE=ns,
        )
        for ns, path in files.items()
    ]

    def slots(path: Path) -> set[int]:
        lines = path.read_text().splitlines() if path.exists() else []
        return {int(line.split()[1]) for line in lines if line.startswith("end")}

    try:
        deadline = time.monotonic() + 60
        while not all(len(slots(path)) >= 4 for path in files.values()):
            assert time.monotonic() < deadline, {ns: slots(path) for ns, path in files.items()}
            time.sleep(0.05)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
    first, second = (slots(path) for path in files.values())
    assert len(first & second) >= 2  # the same slots, run by both: no turns taken with the other project


@pytest.mark.parametrize("backend", ["memory", "redis"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(channel=CHANNELS)
def test_any_str_is_a_channel_on_every_backend(backend: str, channel: str, token: str) -> None:
    """Lone surrogates (valid in JSON), NUL, ``*``, ``:``, CR/LF, the empty name."""
    broadcast = Broadcast(SHARED, namespace=token) if backend == "redis" else Broadcast()
    with broadcast.subscribe(channel) as subscription:
        first = broadcast.publish(channel, {"c": channel})
        asyncio.run(broadcast.apublish(channel, "async"))
        assert take(subscription, 2) == [{"c": channel}, "async"]
    with broadcast.subscribe(channel, last_id=first) as resumed:
        assert take(resumed, 1) == ["async"]


@pytest.mark.parametrize("url", ["memory://", SHARED])
def test_a_channel_that_is_not_a_str_is_refused_on_every_backend(url: str, token: str) -> None:
    broadcast = Broadcast(url, namespace=token)
    for channel in (7, b"news", None):
        with pytest.raises(TypeError, match="channel is a str"):
            broadcast.publish(channel, 1)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="channel is a str"):
            broadcast.subscribe(channel)  # type: ignore[arg-type]


def test_a_channel_name_from_json_input_is_never_a_500(token: str) -> None:
    app = app_on_redis(f"shop_{token}")

    @app.post("/say")
    def say() -> dict[str, str]:
        body = request.get_json()
        with app.broadcast.subscribe(body["room"]) as subscription:
            app.broadcast.publish(body["room"], body["text"])
            return {"heard": take(subscription, 1)[0]}  # type: ignore[dict-item]

    client = app.test_client()
    for room in ('"\\ud800"', '"\\udfff lone"', '"a\\u0000b"', '"room:*"'):
        response = client.post("/say", data=f'{{"room": {room}, "text": "hi"}}', content_type="application/json")
        assert response.status_code == 200 and response.get_json() == {"heard": "hi"}, room

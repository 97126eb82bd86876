"""Broadcast backends chosen by URL scheme: a third-party backend registered by
scheme (or named by an entry point) serves broadcasts, resumption and
cluster-wide periodic services through the ``Backend`` protocol alone."""

from __future__ import annotations

import asyncio
import threading
import time
import typing as t
from pathlib import Path

import pytest

import tether
from tether.live.broadcast import (
    BackendOptions,
    Broadcast,
    Delivery,
    Gap,
    backends,
    check_url,
    register_backend,
    valid_id,
)
from tether.live.broadcast.history import id_key


class LocalTurns:
    """Turns shared by every backend made on one URL in this process."""

    lease_ms = 1000

    def __init__(self, shared: dict[str, t.Any], interval: float) -> None:
        self._shared = shared
        self._interval = interval
        self.slot: int | None = None

    async def take(self) -> bool:
        slot = int(time.monotonic() // self._interval)
        if slot in self._shared["claimed"] or self._shared["running"]:
            return False
        self._shared["claimed"].add(slot)
        self._shared["running"] = True
        self.slot = slot
        return True

    async def renew(self) -> bool:
        return True

    async def release(self) -> None:
        self._shared["running"] = False

    async def until_next_slot(self) -> float:
        now = time.monotonic()
        return (int(now // self._interval) + 1) * self._interval - now

    async def close(self) -> None:
        pass


_TURNS: dict[tuple[str, str], dict[str, t.Any]] = {}


class LoopbackBackend:
    """A backend in miniature, written against the protocol: in-process, with
    its own history and its own ids (of the protocol's form)."""

    healthy = True

    def __init__(self, url: str, options: BackendOptions) -> None:
        self.url = url
        self._deliver = options.deliver
        self._lock = threading.Lock()
        self._sequence = 0
        self._messages: dict[str, list[Delivery]] = {}

    def publish_now(self, channel: str, message: t.Any, event: str | None = None) -> str:
        with self._lock:
            self._sequence += 1
            delivery = Delivery(channel, f"7-{self._sequence}", message, event)
            self._messages.setdefault(channel, []).append(delivery)
            self._deliver((delivery,))
        return delivery.id

    async def publish(self, channel: str, message: t.Any, event: str | None = None) -> str:
        return self.publish_now(channel, message, event)

    def expire(self, channel: str, seconds: float) -> None:
        pass

    def tail(self, channel: str) -> str | None:
        messages = self._messages.get(channel)
        return messages[-1].id if messages else None

    def follow(self, channel: str, tail: str | None) -> None:
        pass

    def unfollow(self, channel: str) -> None:
        pass

    def catch_up(self, channel: str, last_id: str) -> tuple[list[Delivery], bool]:
        key = id_key(last_id)
        kept = self._messages.get(channel, [])
        return [d for d in kept if key is None or t.cast(tuple, id_key(d.id)) > key], key is None

    def turns(self, name: str, interval: float) -> LocalTurns:
        return LocalTurns(_TURNS.setdefault((self.url, name), {"claimed": set(), "running": False}), interval)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations made by a test are forgotten after it."""
    monkeypatch.setattr(backends, "_factories", dict(backends._factories))
    monkeypatch.setattr(backends, "_checks", dict(backends._checks))


def test_a_registered_backend_serves_its_scheme(registry: None) -> None:
    register_backend("loopback", LoopbackBackend)
    broadcast = Broadcast("loopback://here", namespace="shop")
    assert isinstance(broadcast.backend, LoopbackBackend)

    async def main() -> list[t.Any]:
        with broadcast.subscribe("news") as live:
            first = broadcast.publish("news", "one")
            broadcast.publish("news", "two")
            assert valid_id(first)
            got = [await live.__anext__(), await live.__anext__()]
        with broadcast.subscribe("news", last_id=first) as resumed:
            got.append(await resumed.__anext__())
        with broadcast.subscribe("news", last_id="not an id") as lost:
            got += [await lost.__anext__(), await lost.__anext__()]
        return got

    assert asyncio.run(main()) == ["one", "two", "two", Gap("news", "not an id"), "one"]
    # last_id from its tail; alast_id too, with no atail of its own (its tail, in a thread).
    assert broadcast.last_id("news") == asyncio.run(broadcast.alast_id("news")) == "7-2"
    assert asyncio.run(broadcast.alast_id("quiet")) is None


def test_an_unknown_scheme_names_the_registered_ones(registry: None) -> None:
    register_backend("loopback", LoopbackBackend)
    with pytest.raises(ValueError, match=r"No broadcast backend for 'nats://x'.*registered one \([^)]*loopback://[^)]*\).*register_backend"):
        Broadcast("nats://x")
    with pytest.raises(ValueError, match="lowercase URL scheme"):
        register_backend("Loop:back", LoopbackBackend)


def test_a_check_stops_the_app_when_the_backend_cannot_work(registry: None) -> None:
    def missing(url: str, needed_by: str) -> None:
        raise ModuleNotFoundError(f"{needed_by} needs the 'loopback' package")

    register_backend("loopback", LoopbackBackend, check=missing)
    with pytest.raises(ModuleNotFoundError, match="A loopback:// broadcast needs"):
        check_url("loopback://here")


def test_an_entry_point_names_a_backend_by_scheme(
    registry: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "loopback_plugin.py").write_text(f"from {__name__} import LoopbackBackend as factory\n")
    info = tmp_path / "loopback_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: loopback-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[tether.broadcast_backends]\nviaentry = loopback_plugin:factory\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert check_url("viaentry://x") == "viaentry"
    assert isinstance(Broadcast("viaentry://x").backend, LoopbackBackend)


def test_cluster_services_take_turns_through_any_backend_that_offers_them(registry: None) -> None:
    """Two apps on one backend URL, each with the same cluster service: every
    slot is run once, by one of them."""
    register_backend("loopback", LoopbackBackend)
    runs: list[tuple[str, int | None]] = []
    enough = threading.Event()
    apps = [tether.Tether(f"app_{n}") for n in range(2)]
    for app in apps:
        app.config["BROADCAST_URL"] = "loopback://cluster"

        def tick(app: tether.Tether = app) -> None:
            runs.append((app.import_name, app.periodic_services["tick"].slot))
            if len(runs) >= 6:
                enough.set()

        app.periodic(0.05, name="tick", across="cluster")(tick)
        app.periodic_services["tick"].check()

    async def main() -> None:
        services = [app.periodic_services["tick"] for app in apps]
        for service in services:
            service.start(asyncio.get_running_loop())
        await asyncio.get_running_loop().run_in_executor(None, enough.wait, 30)
        for service in services:
            await service.stop()

    asyncio.run(main())
    assert enough.is_set()
    slots = [slot for _, slot in runs]
    assert None not in slots and len(slots) == len(set(slots)), runs


def test_memory_offers_no_cluster_turns_and_says_so() -> None:
    app = tether.Tether(__name__)

    @app.periodic(1, name="cleanup", across="cluster")
    def cleanup() -> None: ...

    with pytest.raises(ValueError) as refused:
        app.periodic_services["cleanup"].check()
    message = str(refused.value)
    assert "Periodic service cleanup runs across the cluster" in message
    assert "MemoryBackend, the backend of 'memory://', cannot: it reaches this process only" in message
    assert "redis://host:port/db" in message and 'across="worker"' in message

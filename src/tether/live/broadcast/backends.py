"""What a broadcast backend is, and which one serves a URL.

A backend is chosen by the scheme of ``BROADCAST_URL``: ``memory://`` and the
Redis ones are registered here; another package adds its own with
:func:`register_backend`, or by naming its factory in the
``tether.broadcast_backends`` entry point group (the entry point's name is the
scheme), which is loaded the first time that scheme is asked for.

The :class:`Backend` protocol is all that the broadcast, the subscriptions,
SSE resumption and cluster-wide periodic services use of a backend.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import threading
import typing as t
from urllib.parse import urlsplit

from ..optional import require
from .errors import TurnsUnavailable
from .history import Delivery, id_key
from .memory import Deliver, MemoryBackend

__all__ = [
    "ENTRY_POINTS", "ID_FORMAT", "Backend", "BackendCheck", "BackendFactory", "BackendOptions", "REDIS_SCHEMES", "Turns",
    "TurnsUnavailable", "check_url", "make_backend", "redacted", "register_backend", "valid_id",
]

#: The entry point group where an installed package names a backend factory
#: under its URL scheme.
ENTRY_POINTS = "tether.broadcast_backends"

#: The URL schemes of the Redis backend (redis-py's: TCP, TLS, a Unix socket).
REDIS_SCHEMES = ("redis", "rediss", "unix")

#: The form of every message id a backend gives (Redis Streams' own).
ID_FORMAT = (
    "'<milliseconds>-<sequence>': two unsigned 64-bit integers in ASCII digits, growing with every message "
    "of a channel (ordered as the pair of integers); '0-0' is before the first message"
)


def valid_id(message_id: str) -> bool:
    """Whether ``message_id`` has ``ID_FORMAT`` (for a backend's own tests)."""
    return id_key(message_id) is not None


class Turns(t.Protocol):
    """Whose turn it is to run a periodic service, among every process that
    shares one backend (``@app.periodic(..., across="cluster")``): one run per
    slot of the interval, never two at once. Made without I/O; each call may
    raise :class:`~tether.BroadcastUnavailable` when the
    backend's server cannot be reached (the service tries again next slot)."""

    #: How long a run holds its turn before :meth:`renew` must extend it.
    lease_ms: int
    #: The slot this process last ran (``None`` before its first run).
    slot: int | None

    async def take(self) -> bool:
        """Claim the current slot and the run's lease; whether this process runs now."""

    async def renew(self) -> bool:
        """Extend the lease during a run; ``False`` once this process lost it."""

    async def release(self) -> None:
        """Give the lease back after a run."""

    async def until_next_slot(self) -> float:
        """Seconds until the next slot begins."""

    async def close(self) -> None:
        """Free what the turns hold (connections)."""


class Backend(t.Protocol):
    """Gives ids, keeps the history, carries messages to the broadcast's ``deliver``.

    Every id it gives has ``ID_FORMAT``, and a channel's ids grow in the
    order its messages are delivered: subscriptions resume after an id
    (``last_id``, an SSE ``Last-Event-ID``), order what a catch-up and live
    delivery both bring, and tell a gap, by comparing ids as that pair of
    integers (``tether.live.broadcast.history.id_key``).
    """

    #: Whether messages from other processes reach this one.
    healthy: bool

    async def publish(self, channel: str, message: t.Any, event: str | None = None) -> str: ...

    def publish_now(self, channel: str, message: t.Any, event: str | None = None) -> str: ...

    def expire(self, channel: str, seconds: float) -> None:
        """Forget ``channel``'s history after ``seconds``."""

    def tail(self, channel: str) -> str | None:
        """The id of the newest message of ``channel``, if any (``last_id``);
        may raise :class:`~tether.BroadcastUnavailable` when it cannot be
        read (a join then goes on without it). A backend may also have
        ``async def atail(channel)``, which ``alast_id`` awaits."""

    # A backend may also have ``def position(channel) -> str | None``: the id
    # it has delivered ``channel`` up to, while it follows the channel, known
    # without I/O (called under the broadcast's lock). A join from now of a
    # channel followed already then starts there, with no round trip.

    def follow(self, channel: str, tail: str | None) -> None:
        """Deliver ``channel``'s messages after ``tail`` (it has a subscriber
        here now). Called under the broadcast's lock: no waiting on I/O."""

    def unfollow(self, channel: str) -> None:
        """Stop delivering ``channel`` (its last subscriber here left). Called
        under the broadcast's lock: no waiting on I/O."""

    def catch_up(self, channel: str, last_id: str) -> tuple[list[Delivery], bool]:
        """The messages after ``last_id``, and whether some may be missing."""

    def turns(self, name: str, interval: float) -> Turns:
        """The turns of periodic service ``name`` across every process this
        backend reaches; raises :class:`TurnsUnavailable`, saying why, when it
        cannot share them."""


@dataclasses.dataclass(frozen=True)
class BackendOptions:
    """What a backend is made with, besides its URL."""

    #: Where its channels and turns live on a shared server (``None``: not given).
    namespace: str | None
    #: Called with the messages of followed channels, in order per channel, as
    #: many at once as the backend has (a sequence of Delivery or Gap).
    deliver: Deliver
    #: About how many messages of each channel it keeps.
    history: int
    dumps: t.Callable[[t.Any], str]
    loads: t.Callable[[str | bytes], t.Any]


#: Makes the backend of a URL.
BackendFactory = t.Callable[[str, BackendOptions], Backend]
#: ``check(url, needed_by)`` raises what keeps the backend of ``url`` from
#: working here, saying that ``needed_by`` (``"A nats:// broadcast"``) needs it.
BackendCheck = t.Callable[[str, str], None]

_factories: dict[str, BackendFactory] = {}
#: Raise what keeps a scheme's backend from working here (a missing package).
_checks: dict[str, BackendCheck] = {}
_lock = threading.Lock()


def register_backend(
    scheme: str, factory: BackendFactory, *, check: BackendCheck | None = None
) -> None:
    """Serve ``scheme://`` URLs with ``factory(url, options)``. ``check``, if
    given, raises what keeps it from working (a missing package, with its
    install command; see ``BackendCheck``): it runs when the app starts,
    so the server stops with the fix. A scheme registered again takes the new
    factory."""
    if not scheme or not isinstance(scheme, str) or scheme != scheme.lower() or ":" in scheme:
        raise ValueError(f"A backend's scheme is a lowercase URL scheme like 'nats', not {scheme!r}.")
    with _lock:
        _factories[scheme] = factory
        if check is None:
            _checks.pop(scheme, None)
        else:
            _checks[scheme] = check


def make_backend(url: str, options: BackendOptions) -> Backend:
    """The backend of ``url`` (see :func:`check_url` for what it raises)."""
    scheme = check_url(url)
    return _factories[scheme](url, options)


def check_url(url: str, needed_by: str | None = None) -> str:
    """The scheme of ``url``, raising what is wrong with it: no backend serves
    it (``ValueError``), or its backend cannot work here (redis-py not
    installed for a Redis one: ``ModuleNotFoundError`` with the command that
    installs it, saying that ``needed_by`` needs it). Checked when the app
    starts, and when a broadcast is made."""
    scheme = urlsplit(url).scheme if isinstance(url, str) else None
    if scheme and scheme not in _factories:
        _load_entry_point(scheme)
    if not scheme or scheme not in _factories:
        others = sorted(set(_factories) - {"memory", *REDIS_SCHEMES})
        raise ValueError(
            f"No broadcast backend for {redacted(url)!r} (BROADCAST_URL): use 'memory://' (one worker) or "
            "'redis://host:port/db' (every worker and host; also rediss:// and unix://)"
            + (f", or a registered one ({', '.join(f'{s}://' for s in others)})" if others else "")
            + f". A package adds a backend with tether.live.broadcast.register_backend() or the {ENTRY_POINTS!r} "
            "entry point group."
        )
    check = _checks.get(scheme)
    if check is not None:
        check(url, needed_by or f"A {scheme}:// broadcast")
    return scheme


def _load_entry_point(scheme: str) -> None:
    for entry in importlib.metadata.entry_points(group=ENTRY_POINTS, name=scheme):
        factory = entry.load()
        with _lock:
            _factories.setdefault(scheme, factory)
        return


def redacted(url: object) -> object:
    """``url`` without its password, for messages and logs."""
    if not isinstance(url, str):
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


def _memory(url: str, options: BackendOptions) -> Backend:
    return MemoryBackend(options.deliver, options.history)


def _redis(url: str, options: BackendOptions) -> Backend:
    if options.namespace is None:
        # Without one, a script would publish where no app listens, silently.
        raise ValueError(
            f"Broadcast({redacted(url)!r}) needs a namespace: apps sharing a Redis keep their channels "
            "apart by namespace. Pass namespace= the BROADCAST_NAMESPACE of the app to reach (by default "
            "its import name, as in Tether(__name__)), or a name of your own."
        )
    # redis-py is optional: the check found it installed.
    from .redis_backend import RedisBackend

    return RedisBackend(url, options.namespace, options.deliver, options.history, options.dumps, options.loads)


def _redis_installed(url: str, needed_by: str) -> None:
    require("redis", "redis", needed_by)


register_backend("memory", _memory)
for _scheme in REDIS_SCHEMES:
    register_backend(_scheme, _redis, check=_redis_installed)

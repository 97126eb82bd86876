"""Who may follow which broadcast channel: the app's channel rules.

A rule is a pattern over channel names, in Werkzeug's URL rule syntax without
the leading slash (``"room:<name>"``, ``"user:<int:id>"``), and a function of
the pattern's values that runs in the request's or WebSocket's context
(``session``, ``g``, the current user) and answers:

* ``True`` (or :data:`FULL`): the channel, and its history (a resume from a
  last id replays what was missed);
* :data:`LIVE_ONLY`: the channel from now on, never its history;
* ``False`` / ``None`` (or :data:`REFUSED`): not this channel.

A rule may be ``async def``. From async code (the live endpoint's WebSocket,
an async view's ``EventStream``, an async handler's ``relay``) it is awaited on
the connection's loop, in its context; from sync code (a sync view, a sync
handler, WSGI) it runs on the thread's own loop, as an async view does there.

Without any rule every channel is allowed (the app's own code decides what it
subscribes to). Once one exists, a channel no rule matches is refused.

A channel name is any ``str``, a rule's values never span a ``/`` (unless the
rule says ``<path:...>``), and a name matches only when the rule, built back
from its values, gives that very name: ``"/room:x"``, ``"room:x/"`` or
``"user:007"`` do not borrow the answer for ``"room:x"`` or ``"user:7"``.
"""

from __future__ import annotations

import enum
import functools
import inspect
import typing as t
import weakref
from collections.abc import Awaitable, Callable, Generator
from urllib.parse import unquote

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule

from ..contexts.steps import run_coroutine
from .broadcast import Broadcast, Subscription, decode_last_ids

__all__ = ["FULL", "LIVE_ONLY", "REFUSED", "Access", "ChannelPolicy", "refusal"]


class Access(enum.Enum):
    """What a channel rule grants."""

    FULL = "full"
    LIVE_ONLY = "live-only"
    REFUSED = "refused"


FULL = Access.FULL
LIVE_ONLY = Access.LIVE_ONLY
REFUSED = Access.REFUSED

Check = t.Callable[..., t.Any]
#: Runs a sync function off the loop, in the caller's context (the app's pool).
RunSync = Callable[[Callable[[], t.Any]], Awaitable[t.Any]]
T = t.TypeVar("T")
#: A walk over channels that yields each channel to ask about, and is sent its access.
Asking = Generator[str, "Access", T]


def refusal(channel: str) -> dict[str, str]:
    """What a client is sent for a channel it may not follow."""
    return {"event": "refused", "channel": channel}


class ChannelPolicy:
    """The app's channel rules (``app.channel``), asked where a client joins."""

    def __init__(self) -> None:
        self._map = Map(strict_slashes=False, merge_slashes=False, redirect_defaults=False)
        self._checks: dict[str, Check] = {}
        #: Whether a rule is ``async def``: async code then guards with ``aguard``.
        self.awaits = False
        #: The subscriptions whose every join goes through the rules already.
        self._checked: weakref.WeakSet[Subscription] = weakref.WeakSet()

    def __bool__(self) -> bool:
        return bool(self._checks)

    def add(self, pattern: str, check: Check) -> None:
        """Let ``check(**values)`` answer for the channels ``pattern`` matches."""
        if not isinstance(pattern, str) or not pattern or pattern.startswith("/"):
            raise ValueError(f"A channel pattern is a name pattern like 'room:<name>', not {pattern!r}.")
        endpoint = f"{len(self._checks)}:{pattern}"
        self._map.add(Rule("/" + pattern, endpoint=endpoint))
        self._checks[endpoint] = check
        self.awaits = self.awaits or inspect.iscoroutinefunction(check)

    def _rule(self, channel: str) -> tuple[Check, t.Mapping[str, t.Any]] | Access:
        """The rule that answers for ``channel`` and its values, or the answer
        when no rule is asked."""
        if not self._checks:
            return FULL
        if not isinstance(channel, str):
            return REFUSED
        try:
            rule, values = self._map.bind("channels", "/").match("/" + channel, return_rule=True)
            built = rule.build(values, append_unknown=False)
        except (HTTPException, LookupError, ValueError, UnicodeError):
            return REFUSED
        if built is None or unquote(built[1], errors="surrogatepass") != "/" + channel:
            return REFUSED
        return self._checks[t.cast(str, rule.endpoint)], values

    def access(self, channel: str) -> Access:
        """What the current user may have of ``channel`` (call it in their
        context), from sync code: an async rule runs on this thread's loop."""
        rule = self._rule(channel)
        if isinstance(rule, Access):
            return rule
        check, values = rule
        answer = check(**values)
        if inspect.isawaitable(answer):
            answer = run_coroutine(answer)
        return _access_of(answer)

    async def aaccess(self, channel: str, run_sync: RunSync | None = None) -> Access:
        """``access`` from async code: an async rule is awaited here, in the
        caller's context; a sync one is called through ``run_sync`` (off the
        loop: a rule that queries a database must not hold every connection
        of the worker) when given, else here."""
        rule = self._rule(channel)
        if isinstance(rule, Access):
            return rule
        check, values = rule
        if run_sync is not None and not inspect.iscoroutinefunction(check):
            answer = await run_sync(functools.partial(check, **values))
        else:
            answer = check(**values)
        if inspect.isawaitable(answer):
            answer = await answer
        return _access_of(answer)

    def subscribe(
        self, broadcast: Broadcast, channels: t.Iterable[str], last_ids: t.Mapping[str, str] | str | None = None
    ) -> tuple[Subscription, list[str]]:
        """A ``subscribe_many`` of the channels the current user may follow
        (from its last id where history is allowed), and those refused."""
        subscription = broadcast.subscribe_many()
        self.checked(subscription)
        refused = self.join(subscription, channels, last_ids)
        return subscription, refused

    def checked(self, subscription: Subscription) -> None:
        """Say that every join of ``subscription`` goes through the rules
        (:meth:`join`, :meth:`access`): :meth:`guard` leaves it be."""
        self._checked.add(subscription)

    def join(
        self, subscription: Subscription, channels: t.Iterable[str], last_ids: t.Mapping[str, str] | str | None = None
    ) -> list[str]:
        """Join the allowed ``channels``; the refused ones. ``last_ids`` as
        ``subscribe_many`` takes it; ignored for a live-only channel."""
        return _answered(self._join(subscription, channels, last_ids), self.access)

    def _join(
        self, subscription: Subscription, channels: t.Iterable[str], last_ids: t.Mapping[str, str] | str | None
    ) -> Asking[list[str]]:
        resume = decode_last_ids(last_ids) if isinstance(last_ids, str) else (last_ids or {})
        refused = []
        for channel in channels:
            access = yield channel
            if access is REFUSED:
                refused.append(channel)
                continue
            last_id = None if access is LIVE_ONLY else (resume.get(channel) if resume is not None else "")
            subscription.join(channel, last_id)
        return refused

    def guard(self, source: t.Any) -> list[str]:
        """Bring a subscription made without the rules under them: leave the
        refused channels (a single-channel one is closed) and drop what a
        live-only one replayed; the refused channels. Anything else passes."""
        return _answered(self._guard(source), self.access)

    async def aguard(self, source: t.Any) -> list[str]:
        """``guard`` from async code, where an async rule is awaited."""
        asking = self._guard(source)
        try:
            channel = next(asking)
            while True:
                channel = asking.send(await self.aaccess(channel))
        except StopIteration as done:
            return t.cast(list[str], done.value)

    def _guard(self, source: t.Any) -> Asking[list[str]]:
        if not self._checks or not isinstance(source, Subscription):
            return []
        if source in self._checked:
            return []
        self._checked.add(source)
        if not source.many:
            return (yield from self._guard_one(source))
        refused = []
        queued = {item.channel for item in source.queued()}
        for channel in source.channels:
            access = yield channel
            if access is REFUSED:
                source.leave(channel)
                refused.append(channel)
            elif access is LIVE_ONLY and channel in queued:
                source.leave(channel)  # drops what it replayed
                source.join(channel)
        return refused

    def _guard_one(self, source: Subscription) -> Asking[list[str]]:
        channel = t.cast(str, source.channel)
        access = yield channel
        if access is REFUSED:
            source.close()
            while source.queued():
                source.poll_item()
            return [channel]
        if access is LIVE_ONLY:
            while source.queued():  # what it replayed
                source.poll_item()
        return []


def _answered(asking: Asking[T], access: Callable[[str], Access]) -> T:
    """Run ``asking``, answering each channel it asks about with ``access``."""
    try:
        channel = next(asking)
        while True:
            channel = asking.send(access(channel))
    except StopIteration as done:
        return t.cast(T, done.value)


def _access_of(answer: t.Any) -> Access:
    if isinstance(answer, Access):
        return answer
    return FULL if answer is True else REFUSED

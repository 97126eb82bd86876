"""Lifecycle signals (blinker), sent at the same moments as Flask's.

Senders check ``signal.receivers`` before calling ``send`` so a signal nobody
listens to costs a dict truth test on the hot path.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

template_rendered = _signals.signal("template-rendered")
before_render_template = _signals.signal("before-render-template")
request_started = _signals.signal("request-started")
request_finished = _signals.signal("request-finished")
request_tearing_down = _signals.signal("request-tearing-down")
got_request_exception = _signals.signal("got-request-exception")
appcontext_tearing_down = _signals.signal("appcontext-tearing-down")
appcontext_pushed = _signals.signal("appcontext-pushed")
appcontext_popped = _signals.signal("appcontext-popped")
message_flashed = _signals.signal("message-flashed")
#: Spawned work (``app.spawn``) raised: sent with ``function`` and ``exception``.
spawned_work_failed = _signals.signal("spawned-work-failed")
#: A periodic service's run raised: sent with ``service`` and ``exception``.
periodic_run_failed = _signals.signal("periodic-run-failed")
#: A broadcast backend connected or lost its server: sent with ``healthy``.
broadcast_health_changed = _signals.signal("broadcast-health-changed")

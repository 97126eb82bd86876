"""tether: Flask's API and context model, with contexts that follow the code."""

import typing as _t

from .app import Blueprint as Blueprint
from .app import Tether as Tether
from .application import json as json
from .application.config import Config as Config
from .application.helpers import abort as abort
from .application.helpers import flash as flash
from .application.helpers import get_flashed_messages as get_flashed_messages
from .application.helpers import get_template_attribute as get_template_attribute
from .application.helpers import make_response as make_response
from .application.helpers import redirect as redirect
from .application.helpers import send_file as send_file
from .application.helpers import send_from_directory as send_from_directory
from .application.helpers import stream_body as stream_body
from .application.helpers import url_for as url_for
from .application.json import jsonify as jsonify
from .application.templating import render_template as render_template
from .application.templating import render_template_string as render_template_string
from .application.templating import stream_template as stream_template
from .application.templating import stream_template_string as stream_template_string
from .application.wrappers import Request as Request
from .application.wrappers import Response as Response
from .contexts import globals as _globals
from .contexts.ctx import after_this_request as after_this_request
from .contexts.ctx import has_app_context as has_app_context
from .contexts.ctx import has_request_context as has_request_context
from .contexts.ctx import has_websocket_context as has_websocket_context
from .contexts.globals import ContextError as ContextError
from .contexts.propagation import copy_current_request_context as copy_current_request_context
from .contexts.propagation import stream_with_context as stream_with_context
from .dispatcher import DispatcherMiddleware as DispatcherMiddleware
from .live.background import Job as Job
from .live.background import current_job as current_job
from .live.broadcast import Broadcast as Broadcast
from .live.broadcast import BroadcastUnavailable as BroadcastUnavailable
from .live.broadcast import Delivery as Delivery
from .live.broadcast import Gap as Gap
from .live.broadcast import SubscriberTooSlow as SubscriberTooSlow
from .live.forwarding import forward as forward
from .live.forwarding import forward_async as forward_async
from .live.presence import Presence as Presence
from .live.sse import EventStream as EventStream
from .live.sse import ServerSentEvent as ServerSentEvent
from .serving.websocket import WebSocket as WebSocket
from .serving.websocket import WebSocketDisconnect as WebSocketDisconnect
from .signals import appcontext_popped as appcontext_popped
from .signals import appcontext_pushed as appcontext_pushed
from .signals import appcontext_tearing_down as appcontext_tearing_down
from .signals import before_render_template as before_render_template
from .signals import broadcast_health_changed as broadcast_health_changed
from .signals import got_request_exception as got_request_exception
from .signals import message_flashed as message_flashed
from .signals import periodic_run_failed as periodic_run_failed
from .signals import request_finished as request_finished
from .signals import request_started as request_started
from .signals import request_tearing_down as request_tearing_down
from .signals import spawned_work_failed as spawned_work_failed
from .signals import template_rendered as template_rendered

if _t.TYPE_CHECKING:
    from .application.sessions import SessionMixin
    from .contexts.ctx import _AppCtxGlobals

# The proxies, typed as what they stand for.
current_app: "Tether" = _globals.current_app
g: "_AppCtxGlobals" = _globals.g
request: "Request" = _globals.request
session: "SessionMixin" = _globals.session
websocket: "WebSocket" = _globals.websocket

__version__ = "0.1.0"

#: What ``from tether import *`` gives and ``dir(tether)`` lists: the names the
#: docs (docs/api/) describe, not the subpackages and helpers this module holds.
__all__ = [
    "Blueprint", "Broadcast", "BroadcastUnavailable", "Config", "ContextError", "Delivery", "DispatcherMiddleware",
    "EventStream", "Gap", "Job", "Presence", "Request", "Response", "ServerSentEvent", "SubscriberTooSlow", "Tether",
    "WebSocket", "WebSocketDisconnect",
    "abort", "after_this_request", "copy_current_request_context", "current_app", "current_job", "flash", "forward",
    "forward_async", "g", "get_flashed_messages", "get_template_attribute", "has_app_context",
    "has_request_context", "has_websocket_context", "json", "jsonify", "make_response", "redirect",
    "render_template", "render_template_string", "request", "send_file", "send_from_directory", "session",
    "stream_body", "stream_template", "stream_template_string", "stream_with_context", "url_for", "websocket",
    # Flask's signals, and tether's own.
    "appcontext_popped", "appcontext_pushed", "appcontext_tearing_down", "before_render_template",
    "broadcast_health_changed", "got_request_exception", "message_flashed", "periodic_run_failed",
    "request_finished", "request_started", "request_tearing_down", "spawned_work_failed", "template_rendered",
]


def __dir__() -> list[str]:
    """The public names and the module's own dunders: the subpackages (``tether.app``,
    ``tether.live``...) stay importable but are not what ``dir(tether)`` shows."""
    return sorted([*__all__, *(name for name in globals() if name.startswith("__") and name != "__dir__")])

"""Celery with contexts (``pip install "tether[celery]"``, from a clone of
tether ``pip install -e ".[celery]"``): tasks that run in the app's contexts
(``binding``), carry the enqueuing request and ``g`` values on request
(``carried``), and report progress to the browser (``events``)."""

from ..optional import require

require("celery", "celery", "tether.celery (Celery with contexts)")

from .binding import ContextTask, init_celery  # noqa: E402  (after the check that names the fix)
from .events import channel, progress, task_events  # noqa: E402

__all__ = ["ContextTask", "channel", "init_celery", "progress", "task_events"]

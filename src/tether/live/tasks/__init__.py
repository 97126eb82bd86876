"""Celery with contexts (``pip install "tether[celery]"``): tasks that run in
the app's contexts (``binding``), carry the enqueuing request and ``g`` values
on request (``carried``), and report progress to the browser (``events``)."""

from .binding import ContextTask, init_celery
from .events import channel, progress, task_events

__all__ = ["ContextTask", "channel", "init_celery", "progress", "task_events"]

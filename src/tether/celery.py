"""``tether.celery``: Celery bound to a tether app (see ``tether.live.tasks``)."""

from .live.tasks import ContextTask, channel, init_celery, progress, task_events

__all__ = ["ContextTask", "channel", "init_celery", "progress", "task_events"]

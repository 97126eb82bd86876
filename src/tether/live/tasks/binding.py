"""A Celery app bound to a tether app, whose tasks run in that app's contexts.

``init_celery(app)`` makes (or takes) the Celery app, configures it from
``app.config["CELERY"]`` (Flask's recipe: ``broker_url``, ``result_backend``,
...), makes it the default (so ``@shared_task`` tasks are its tasks) and keeps
it as ``app.extensions["celery"]``. Its task base, :class:`ContextTask`, runs
the *whole* execution of a task in a fresh context of the app: the run,
retries, ``on_success``/``on_failure``/``after_return`` and the
``task_prerun``/``task_postrun``/``task_failure`` signals, with teardown once
per execution. Flask's recipe wraps only ``__call__``, so its hooks and
signals run without one (celery #2064).

Called directly, or run eagerly, inside a context of the same app, a task uses
that context instead of pushing a second one, so nothing the caller holds (a
database session, say) is torn down under it.
"""

from __future__ import annotations

import typing as t

import celery
from celery import signals

from ...contexts.ctx import _cv_app
from .carried import HEADER, carry, execution_context, refuse_proxies
from .events import FAILURE_MESSAGE, BroadcastingApp, finish

__all__ = ["ContextTask", "init_celery"]


class TaskApp(BroadcastingApp, t.Protocol):
    """What a task needs of the tether app (``tether.Tether`` is one)."""

    extensions: dict[str, t.Any]


class ContextTask(celery.Task):
    """A task base class (a mixin for other bases) whose every execution runs
    in a fresh context of the bound app; see the module docstring.

    ``carry_request = True`` (or ``@celery.task(carry_request=True)``) sends a
    read-only copy of the enqueuing request along: the task reads it as
    ``request`` (``tether.live.tasks.carried`` says what is carried).
    """

    carry_request = False

    @property
    def tether_app(self) -> TaskApp:
        app = getattr(self.app, "tether_app", None)
        if app is None:
            raise RuntimeError(
                f"Task {self.name!r} has no tether app: bind its Celery app with tether.celery.init_celery(app)."
            )
        return t.cast(TaskApp, app)

    @property
    def __trace__(self) -> t.Any:
        return self.__dict__.get("_traced")

    @__trace__.setter
    def __trace__(self, tracer: t.Any) -> None:
        # Celery's worker runs every execution through the task's tracer (run,
        # hooks, signals): the context is pushed around all of it, here.
        self.__dict__["_traced"] = None if tracer is None else _in_context(self, tracer)

    def _in_own_context(self) -> bool:
        ctx = _cv_app.get(None)
        return ctx is not None and ctx.app is self.tether_app

    def __call__(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        if self._in_own_context():
            return super().__call__(*args, **kwargs)
        with execution_context(self.tether_app, None):
            return super().__call__(*args, **kwargs)

    def apply(self, args: t.Any = None, kwargs: t.Any = None, **options: t.Any) -> t.Any:
        if self._in_own_context():
            return super().apply(args, kwargs, **options)
        with execution_context(self.tether_app, None):
            return super().apply(args, kwargs, **options)

    def apply_async(self, args: t.Any = None, kwargs: t.Any = None, **options: t.Any) -> t.Any:
        refuse_proxies(self.name, args, kwargs)
        carried = carry(self.tether_app, self.name, self.carry_request)
        if carried is not None:
            options["headers"] = {**(options.get("headers") or {}), HEADER: carried}
        return super().apply_async(args, kwargs, **options)


def _in_context(task: ContextTask, tracer: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    def traced(uuid: str, args: t.Any, kwargs: t.Any, request: t.Any = None) -> t.Any:
        carried = (request or {}).get(HEADER)  # a message's headers are the worker's request fields
        with execution_context(task.tether_app, carried):
            return tracer(uuid, args, kwargs, request)

    return traced


def init_celery(app: TaskApp, celery_app: celery.Celery | None = None) -> celery.Celery:
    """Bind a Celery app (by default a new one named after ``app``) to ``app``;
    see the module docstring. Returns the Celery app."""
    if celery_app is None:
        celery_app = celery.Celery(getattr(app, "import_name", "tether"), task_cls=ContextTask)
    elif not issubclass(celery_app.Task, ContextTask):
        raise TypeError(
            "The Celery app's task class is not a ContextTask: make it with task_cls=tether.celery.ContextTask "
            "(or a subclass), or let init_celery(app) make it."
        )
    if "CELERY" in app.config:
        celery_app.config_from_object(app.config["CELERY"])
    celery_app.tether_app = app
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app


def _ours(sender: t.Any) -> TaskApp | None:
    if isinstance(sender, ContextTask):
        return getattr(sender.app, "tether_app", None)
    return None


@signals.task_success.connect
def _succeeded(sender: t.Any = None, result: t.Any = None, **_: t.Any) -> None:
    app = _ours(sender)
    if app is not None and sender.request.id:
        finish(app, sender.request.id, "success", result)


@signals.task_failure.connect
def _failed(sender: t.Any = None, task_id: str | None = None, **_: t.Any) -> None:
    app = _ours(sender)
    if app is not None and task_id:
        finish(app, task_id, "failure", {"message": FAILURE_MESSAGE})


@signals.task_revoked.connect
def _revoked(sender: t.Any = None, request: t.Any = None, **_: t.Any) -> None:
    app = _ours(sender)
    if app is not None and request is not None and request.id:
        finish(app, request.id, "revoked")

"""gunicorn settings for a gthread worker (README, Deploying): its requests run on
other threads than the one with the signal handlers, so the app is told here,
on the worker's main thread, to watch for shutdown."""


def post_worker_init(worker):
    worker.wsgi.serving.watch_signals()

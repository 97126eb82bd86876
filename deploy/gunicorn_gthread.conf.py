"""gunicorn's threaded WSGI workers: `gunicorn -c deploy/gunicorn_gthread.conf.py module:app`.
No WebSockets (WSGI); SSE and streams work, one thread each."""

worker_class = "gthread"
workers = 4
threads = 8
bind = "0.0.0.0:8000"
graceful_timeout = 15


def post_worker_init(worker):
    """Requests run on pool threads, where no signal handler can be set: watch
    SIGTERM from the worker's main thread, so open streams end at shutdown."""
    worker.wsgi.serving.watch_signals()

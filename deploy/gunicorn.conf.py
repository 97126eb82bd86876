"""gunicorn with uvicorn's workers: `gunicorn -c deploy/gunicorn.conf.py module:app`."""

import multiprocessing

# ASGI workers: WebSockets, the lifespan (before_serving, after_serving, the
# periodic services) and SIGTERM handling with streams open all work.
worker_class = "uvicorn_worker.UvicornWorker"
workers = multiprocessing.cpu_count()
bind = "0.0.0.0:8000"
# Above SPAWN_GRACE_PERIOD (10 s), so spawned work may finish at shutdown.
graceful_timeout = 15
timeout = 60
forwarded_allow_ips = "*"

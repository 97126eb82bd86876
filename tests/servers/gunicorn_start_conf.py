"""gunicorn settings that start the app when each worker boots, not at its
first request (README, Deploying): a setting that cannot work stops gunicorn."""


def post_worker_init(worker):
    worker.wsgi.serving.start_wsgi()

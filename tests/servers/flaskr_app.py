"""Flask's own tutorial app (flaskr, from Flask 3.1.3's source), unchanged, on
tether: ``flask`` is aliased, the database is made and a user registered, and
two streamed views are added that read the database as they stream. Its
``sqlite3`` connection is opened in a ``before_request`` hook with SQLite's
default ``check_same_thread=True``: a hook, view, chunk or teardown on another
thread than the one that opened it fails. Every error logged (by the app or
the server) is written to $ERRORS_FILE."""

import logging
import os
import time

from tether.compat import alias_flask

alias_flask()

from flask import Response  # noqa: E402
from flaskr import create_app  # noqa: E402
from flaskr.db import get_db, init_db  # noqa: E402
from werkzeug.security import generate_password_hash  # noqa: E402

from tether import EventStream  # noqa: E402

errors = logging.FileHandler(os.environ["ERRORS_FILE"])
errors.setLevel(logging.ERROR)
for name in ("", "uvicorn.error", "flaskr"):
    logging.getLogger(name).addHandler(errors)

app = create_app({"DATABASE": os.environ["DATABASE"], "SECRET_KEY": "flaskr on tether"})
with app.app_context():
    init_db()
    db = get_db()
    db.execute(
        "INSERT INTO user (username, password) VALUES (?, ?)", ("alice", generate_password_hash("alice", "pbkdf2"))
    )
    db.execute("INSERT INTO post (title, body, author_id) VALUES ('first', 'hello', 1)")
    db.commit()


@app.before_request
def open_db() -> None:
    get_db()


@app.route("/stream")
def stream() -> Response:
    def rows():
        for n in range(3):
            count = get_db().execute("SELECT COUNT(*) FROM post").fetchone()[0]
            yield f"{n} {count}\n"
            time.sleep(0.001)

    return Response(rows(), mimetype="text/plain")


@app.route("/events")
def events() -> EventStream:
    def titles():
        for _ in range(3):
            yield get_db().execute("SELECT title FROM post").fetchone()[0]

    return EventStream(titles())

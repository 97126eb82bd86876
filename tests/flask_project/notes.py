"""A small notes app written against Flask's API (the tutorial's patterns)."""

import sqlite3

import click
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    get_flashed_messages,
    jsonify,
    redirect,
    render_template_string,
    request,
    session,
    stream_with_context,
    url_for,
)
from flask.views import MethodView

bp = Blueprint("api", __name__, url_prefix="/api")


def get_db():
    if "db" not in g:
        g.db = sqlite3.connect(current_app.config["DATABASE"])
        g.db.row_factory = sqlite3.Row
    return g.db


def close_db(e=None):
    db = g.pop("db", None)
    if db is not None:
        db.close()


def init_db():
    db = get_db()
    db.executescript(
        "DROP TABLE IF EXISTS note; CREATE TABLE note (id INTEGER PRIMARY KEY, owner TEXT, body TEXT);"
    )


class NoteAPI(MethodView):
    def get(self, note_id):
        row = get_db().execute("SELECT * FROM note WHERE id = ?", (note_id,)).fetchone()
        if row is None:
            abort(404)
        return jsonify(id=row["id"], owner=row["owner"], body=row["body"])

    def delete(self, note_id):
        db = get_db()
        db.execute("DELETE FROM note WHERE id = ?", (note_id,))
        db.commit()
        return "", 204


bp.add_url_rule("/notes/<int:note_id>", view_func=NoteAPI.as_view("note"))


@bp.route("/notes", methods=["POST"])
def create_note():
    if g.user is None:
        abort(401)
    data = request.get_json()
    if not data or not data.get("body"):
        return {"error": "body is required"}, 400
    db = get_db()
    cursor = db.execute("INSERT INTO note (owner, body) VALUES (?, ?)", (g.user, data["body"]))
    db.commit()
    return {"id": cursor.lastrowid, "url": url_for("api.note", note_id=cursor.lastrowid)}, 201


@bp.errorhandler(401)
def unauthorized(e):
    return jsonify(error="login required"), 401


def create_app(test_config=None):
    app = Flask(__name__)
    app.config.from_mapping(SECRET_KEY="dev", DATABASE=":memory:")
    if test_config is not None:
        app.config.update(test_config)

    app.teardown_appcontext(close_db)
    app.register_blueprint(bp)

    @app.cli.command("init-db")
    def init_db_command():
        init_db()
        click.echo("Initialized the database.")

    @app.before_request
    def load_user():
        g.user = session.get("user")

    @app.route("/login", methods=["GET", "POST"])
    def login():
        if request.method == "POST":
            session["user"] = request.form["username"]
            flash(f"Welcome, {session['user']}")
            return redirect(url_for("index"))
        return render_template_string('<form method="post"><input name="username"></form>')

    @app.route("/logout")
    def logout():
        session.clear()
        return redirect(url_for("index"))

    @app.route("/")
    def index():
        return render_template_string(
            "{% for m in get_flashed_messages() %}<p>{{ m }}</p>{% endfor %}Hello {{ g.user or 'stranger' }}"
        )

    @app.route("/count")
    def count():
        rows = get_db().execute("SELECT owner, COUNT(*) AS n FROM note GROUP BY owner").fetchall()
        return {row["owner"]: row["n"] for row in rows}

    @app.route("/export")
    def export():
        def generate():
            yield f"user={g.user}\n"
            for row in get_db().execute("SELECT body FROM note ORDER BY id"):
                yield row["body"] + "\n"

        return stream_with_context(generate()), {"Content-Type": "text/plain"}

    @app.errorhandler(404)
    def not_found(e):
        return jsonify(error="not found", path=request.path), 404

    return app


__all__ = ["create_app", "get_flashed_messages"]

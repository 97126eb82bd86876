from tether.compat import alias_flask

alias_flask()  # before anything imports flask

from flask import Flask, jsonify, request, stream_with_context  # noqa: E402  (tether's)

app = Flask(__name__)


@app.route("/hello")
def hello():
    return jsonify(greeting=f"hello {request.args.get('name', 'world')}")


@app.route("/rows")
def rows():
    @stream_with_context  # still accepted; tether does not need it
    def generate():
        for n in range(int(request.args.get("n", 2))):
            yield f"row {n}\n"

    return app.response_class(generate(), mimetype="text/plain")

"""An app that sends the response header a request asks for, served by real
servers in tests/test_response_headers.py; errors are logged to $ERRORS_FILE."""

import logging
import os

from tether import Response, Tether, request

app = Tether(__name__)
_handler = logging.FileHandler(os.environ["ERRORS_FILE"])
_handler.setLevel(logging.ERROR)
app.logger.addHandler(_handler)


@app.route("/")
def send_header() -> Response:
    """Header ``name`` with ``value`` (query arguments), streamed if ``stream`` is given."""
    body = iter([b"streamed"]) if "stream" in request.args else b"plain"
    response = Response(body)
    response.headers[request.args["name"]] = request.args["value"]
    return response

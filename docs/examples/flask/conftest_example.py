# conftest.py of a Flask project whose tests should run on tether.
from tether.compat import alias_flask

alias_flask()  # before the tests import the app, and so flask

import pytest  # noqa: E402
from wsgi import app as flask_app  # noqa: E402


@pytest.fixture
def client():
    flask_app.config.update(TESTING=True)
    return flask_app.test_client()

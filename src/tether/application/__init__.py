"""Layer 3, the application, protocol-free: it takes a ``RequestContext`` and
returns a ``Response``, never touching a socket or a WSGI/ASGI detail.

The ``Application`` class is built up one concern per module: ``base`` (setup
and registration), ``urls``, ``responses``, ``errors``, ``pipeline`` (the
request path). Beside them: config, wrappers, sessions, json, templating,
routing (the fast router), scaffold, blueprints, views, helpers.
"""

#: The Flask release whose API and behaviour tether follows: ``flask.__version__``
#: under ``alias_flask()`` (extensions compare it) and ``--version`` say it.
FLASK_VERSION = "3.1.3"

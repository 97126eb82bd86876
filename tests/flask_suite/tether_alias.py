"""A pytest plugin (``-p tether_alias``): ``import flask`` gives tether from the
start of the run, before a suite's conftest imports it."""

from tether.compat import alias_flask

alias_flask()

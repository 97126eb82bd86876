"""Sphinx configuration of tether's documentation.

Why Sphinx (with the furo theme and MyST Markdown) rather than MkDocs: tether's
docstrings are reStructuredText (``:class:``, ``:meth:``, ``:data:`` roles,
``#:`` attribute comments), which autodoc reads as they are; ``-n`` checks every
cross-reference, and ``literalinclude`` puts the tested files of
``docs/examples/`` on the pages. Pages are Markdown (MyST), so they read well on
GitHub too. Build (strict: any warning fails it):

    .venv/bin/sphinx-build -W --keep-going -n -q docs docs/_build
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import tether  # noqa: E402

project = "tether"
author = "the tether developers"
copyright = "the tether developers (BSD-3-Clause)"
# The package's own version, the one the wheel is built with (pyproject.toml reads it too).
release = version = tether.__version__

extensions = ["myst_parser", "sphinx.ext.autodoc"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "README.md", "examples"]

html_theme = "furo"
html_title = f"tether {release}"

myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True

nitpicky = True
# An override without a docstring shows none, rather than Werkzeug's, Click's or
# Celery's, whose roles and references belong to their own docs.
autodoc_inherit_docstrings = False

# No network at build time, so no intersphinx: references to the standard
# library and to the libraries below are left as text. Every reference to
# tether itself must resolve, except these internals that signatures name
# (type variables and base classes whose API the pages give).
EXTERNAL = (
    "builtins|typing|t|ft|collections|os|datetime|http|asyncio|_asyncio|concurrent|threading|contextvars|types"
    "|logging|json|shlex|io|pathlib|ssl|werkzeug|jinja2|click|clickpkg|celery|kombu|opentelemetry|blinker|itsdangerous"
)
nitpick_ignore_regex = [
    (r"py:.*", rf"({EXTERNAL})(\..*)?"),
    (r"py:.*", r"(None|True|False|Any|Callable|Awaitable|TracerProvider|CliRunner|Result|TestResponse\..*)"),
    # Type variables (``F``, ``T``, ``R``) and parameter specifications (``P``).
    (r"py:class", r"(tether\..*\.)?(F|T|R|P)"),
    (r"py:class", r"tether\.(application\.pipeline\.)?Application"),
    (r"py:class", r"Application"),
    (r"py:class", r"tether\.(serving\.lifecycle\.ServingState|live\.tasks\.binding\.TaskApp|cli\.discovery\.CliApp)"),
    (r"py:class", r"tether\.live\.broadcast\.subscription\.(Registry|Deliveries)"),
    # Presence's internals, named in the signature of the handle it gives.
    (r"py:class", r"tether\.live\.presence\.connection\.(Backend|Connection)"),
    # Delivery and Gap are documented where they are public: tether.Delivery, tether.Gap.
    (r"py:class", r"(tether\.live\.broadcast\.history\.)?(Delivery|Gap)"),
    (r"py:class", r"tether\.live\.background\.Background"),
]

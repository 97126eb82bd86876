"""Where an app's instance folder is, by Flask's rules, when none is given.

- A project that is not installed: ``instance`` beside the top-level module, or
  beside the top-level package's folder (``project/app.py`` and
  ``project/pkg/__init__.py`` both give ``project/instance``).
- An installed one (under ``sys.prefix``, or a ``site-packages`` folder):
  ``<prefix>/var/<app name>-instance``.
- A name that cannot be found (``__main__``, a module made in memory): the
  working directory's ``instance``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path, PurePath

__all__ = ["default_instance_path"]


def default_instance_path(import_name: str, app_name: str) -> str:
    folder = _project_folder(import_name)
    prefix = _install_prefix(folder)
    if prefix is None:
        return os.path.join(folder, "instance")
    return os.path.join(prefix, "var", f"{app_name}-instance")


def _project_folder(import_name: str) -> str:
    """The folder holding the top-level module or package of ``import_name``."""
    top = import_name.partition(".")[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):  # "__main__", or an invalid name
        spec = None
    if spec is None:
        return os.getcwd()
    locations = spec.submodule_search_locations
    if not locations:  # a module
        return os.path.dirname(spec.origin or os.getcwd())
    if spec.origin not in (None, "namespace"):  # a package with an __init__.py
        return os.path.dirname(os.path.dirname(spec.origin))
    # A namespace package: the portion that holds the module asked for.
    try:
        inner = importlib.util.find_spec(import_name)
    except (ImportError, ValueError):
        inner = None
    if inner is not None and inner.submodule_search_locations:
        common = Path(os.path.commonpath(list(inner.submodule_search_locations)))
        portion = next((p for p in locations if common.is_relative_to(p)), next(iter(locations)))
    else:
        portion = next(iter(locations))
    return os.path.dirname(portion)


def _install_prefix(folder: str) -> str | None:
    """The installation prefix ``folder`` is under, or ``None`` (not installed)."""
    system = os.path.abspath(sys.prefix)
    if PurePath(folder).is_relative_to(system):
        return system
    parent, name = os.path.split(folder)
    if name.lower() != "site-packages":
        return None
    grandparent, parent_name = os.path.split(parent)
    if parent_name.lower() == "lib":  # Windows: <prefix>/Lib/site-packages
        return grandparent
    if os.path.basename(grandparent).lower() == "lib":  # <prefix>/lib/pythonX.Y/site-packages
        return os.path.dirname(grandparent)
    return parent  # <prefix>/site-packages

"""The optional dependencies of the live features (redis-py for ``redis://``
broadcasts and cluster services, Celery for ``tether.celery``): a missing one
is named with the command that installs it, in both forms, since an extra's
published name (``tether[redis]``) does not install from a clone."""

from __future__ import annotations

import importlib

__all__ = ["install_command", "require"]


def install_command(extra: str) -> str:
    """How to install tether's ``extra``: published, and from a clone."""
    return f'pip install "tether[{extra}]" (from a clone of tether: pip install -e ".[{extra}]")'


def require(module: str, extra: str, needed_by: str) -> None:
    """Import ``module``; when it is not installed, raise ``ModuleNotFoundError``
    saying that ``needed_by`` needs it and how to install it."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module and not (e.name or "").startswith(f"{module}."):
            raise  # something the module itself imports: its own error says more
        raise ModuleNotFoundError(
            f"{needed_by} needs the {module!r} package, which is not installed: {install_command(extra)}.",
            name=module,
        ) from None

"""``app.config``: a dict with loaders from objects, files, mappings and the environment."""

from __future__ import annotations

import errno
import json
import logging
import os
import types
import typing as t
from datetime import timedelta

from werkzeug.utils import import_string

__all__ = ["DEFAULT_CONFIG", "TETHER_SETTINGS", "Config", "ConfigAttribute", "warn_unapplied_environment"]

T = t.TypeVar("T")

#: Every key an app starts with: Flask's, then tether's own.
DEFAULT_CONFIG: dict[str, t.Any] = {
    "DEBUG": None,
    "TESTING": False,
    "PROPAGATE_EXCEPTIONS": None,
    "SECRET_KEY": None,
    "SECRET_KEY_FALLBACKS": [],
    "PERMANENT_SESSION_LIFETIME": timedelta(days=31),
    "USE_X_SENDFILE": False,
    "TRUSTED_HOSTS": None,
    "SERVER_NAME": None,
    "APPLICATION_ROOT": "/",
    "SESSION_COOKIE_NAME": "session",
    "SESSION_COOKIE_DOMAIN": None,
    "SESSION_COOKIE_PATH": None,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SECURE": False,
    "SESSION_COOKIE_PARTITIONED": False,
    "SESSION_COOKIE_SAMESITE": None,
    "SESSION_REFRESH_EACH_REQUEST": True,
    "MAX_CONTENT_LENGTH": None,
    "MAX_FORM_MEMORY_SIZE": 500_000,
    "MAX_FORM_PARTS": 1_000,
    "SEND_FILE_MAX_AGE_DEFAULT": None,
    "TRAP_BAD_REQUEST_ERRORS": None,
    "TRAP_HTTP_EXCEPTIONS": False,
    "EXPLAIN_TEMPLATE_LOADING": False,
    "PREFERRED_URL_SCHEME": "http",
    "TEMPLATES_AUTO_RELOAD": None,
    "MAX_COOKIE_SIZE": 4093,
    "PROVIDE_AUTOMATIC_OPTIONS": True,
    "SYNC_THREADS": 40,
    "WEBSOCKET_SYNC_THREADS": 64,
    "SPAWN_THREADS": 8,
    "SPAWN_GRACE_PERIOD": 10.0,
    "FORWARD_MAX_DEPTH": 8,
    "BROADCAST_URL": "memory://",
    # Where the app's channels, histories and cluster locks live on a shared Redis
    # (None: the app's import name; tether.live.broadcast.namespace).
    "BROADCAST_NAMESPACE": None,
    "BROADCAST_QUEUE_SIZE": 100,
    "BROADCAST_HISTORY": 1000,
    "BROADCAST_OVERFLOW": "drop-oldest",
    # Seconds a worker's presence outlives its last heartbeat (sent every third of it):
    # a killed worker's members leave within PRESENCE_TTL * 4/3 (tether.live.presence).
    "PRESENCE_TTL": 15.0,
    "SSE_KEEPALIVE_INTERVAL": 15.0,
    "SSE_SEND_TIMEOUT": 30.0,
    "WEBSOCKET_ALLOWED_ORIGINS": None,
    "WEBSOCKET_MAX_MESSAGE_SIZE": 1024 * 1024,
    "CELERY_CARRY_G": [],
    # The request headers a task message carries (carry_request=True): an allow-list,
    # so no credential (Cookie, Authorization, Proxy-Authorization, X-Api-Key, ...)
    # reaches the broker unless named here.
    "CELERY_CARRY_HEADERS": ["Accept", "Accept-Language", "User-Agent", "X-Request-ID"],
    "CELERY_CARRY_MAX_BYTES": 64 * 1024,
    "CELERY_PROGRESS_TTL": 24 * 3600,
}

#: The keys of tether's own settings (the defaults after Flask's): those that an
#: environment variable without the prefix is taken to be meant for.
TETHER_SETTINGS: tuple[str, ...] = tuple(DEFAULT_CONFIG)[tuple(DEFAULT_CONFIG).index("SYNC_THREADS"):]

#: The prefixes ``from_prefixed_env()`` reads, the last one winning.
ENV_PREFIXES = ("FLASK_", "TETHER_")


class ConfigAttribute(t.Generic[T]):
    """Makes an app attribute read and write a config key."""

    def __init__(self, name: str, get_converter: t.Callable[[t.Any], T] | None = None) -> None:
        self.__name__ = name
        self.get_converter = get_converter

    def __get__(self, obj: t.Any, owner: t.Any = None) -> t.Any:
        if obj is None:
            return self
        rv = obj.config[self.__name__]
        return self.get_converter(rv) if self.get_converter is not None else rv

    def __set__(self, obj: t.Any, value: t.Any) -> None:
        obj.config[self.__name__] = value


class Config(dict[str, t.Any]):
    """Configuration values; only UPPERCASE keys are taken from objects and files."""

    def __init__(self, root_path: str | os.PathLike[str], defaults: dict[str, t.Any] | None = None) -> None:
        super().__init__(defaults or {})
        self.root_path = root_path

    def from_envvar(self, variable_name: str, silent: bool = False) -> bool:
        """Load the Python file named by an environment variable."""
        rv = os.environ.get(variable_name)
        if not rv:
            if silent:
                return False
            raise RuntimeError(
                f"The environment variable {variable_name!r} is not set and as such "
                "configuration could not be loaded. Set this variable and make it point "
                "to a configuration file."
            )
        return self.from_pyfile(rv, silent=silent)

    def from_prefixed_env(self, prefix: str | None = None, *, loads: t.Callable[[str], t.Any] = json.loads) -> bool:
        """Load ``PREFIX_KEY`` environment variables; values are parsed as JSON when
        they can be, and ``__`` in a key sets a nested dict item. Without a
        ``prefix``, ``FLASK_`` variables are read, then ``TETHER_`` ones (which
        win): an app moved from Flask keeps its environment."""
        for each in ENV_PREFIXES if prefix is None else (f"{prefix}_",):
            self._from_env_prefix(each, loads)
        return True

    def _from_env_prefix(self, prefix: str, loads: t.Callable[[str], t.Any]) -> None:
        for key in sorted(os.environ):
            if not key.startswith(prefix):
                continue
            value: t.Any = os.environ[key]
            key = key.removeprefix(prefix)
            try:
                value = loads(value)
            except Exception:
                pass
            if "__" not in key:
                self[key] = value
                continue
            current: dict[str, t.Any] = self
            *parts, tail = key.split("__")
            for part in parts:
                current = current.setdefault(part, {})
            current[tail] = value

    def from_pyfile(self, filename: str | os.PathLike[str], silent: bool = False) -> bool:
        """Execute a Python file and load its UPPERCASE names."""
        filename = os.path.join(self.root_path, filename)
        module = types.ModuleType("config")
        module.__file__ = str(filename)
        try:
            with open(filename, mode="rb") as config_file:
                exec(compile(config_file.read(), filename, "exec"), module.__dict__)
        except OSError as e:
            if silent and e.errno in (errno.ENOENT, errno.EISDIR, errno.ENOTDIR):
                return False
            e.strerror = f"Unable to load configuration file ({e.strerror})"
            raise
        self.from_object(module)
        return True

    def from_object(self, obj: object | str) -> None:
        """Load the UPPERCASE attributes of an object, or of the object at an import path."""
        if isinstance(obj, str):
            obj = import_string(obj)
        for key in dir(obj):
            if key.isupper():
                self[key] = getattr(obj, key)

    def from_file(
        self,
        filename: str | os.PathLike[str],
        load: t.Callable[[t.IO[t.Any]], t.Mapping[str, t.Any]],
        silent: bool = False,
        text: bool = True,
    ) -> bool:
        """Load a file with ``load`` (``json.load``, ``tomllib.load``, ...)."""
        filename = os.path.join(self.root_path, filename)
        try:
            with open(filename, "r" if text else "rb") as f:
                obj = load(f)
        except OSError as e:
            if silent and e.errno in (errno.ENOENT, errno.EISDIR):
                return False
            e.strerror = f"Unable to load configuration file ({e.strerror})"
            raise
        return self.from_mapping(obj)

    def from_mapping(self, mapping: t.Mapping[str, t.Any] | None = None, **kwargs: t.Any) -> bool:
        """Load the UPPERCASE keys of a mapping and of keyword arguments."""
        mappings: dict[str, t.Any] = {}
        if mapping is not None:
            mappings.update(mapping)
        mappings.update(kwargs)
        for key, value in mappings.items():
            if key.isupper():
                self[key] = value
        return True

    def get_namespace(self, namespace: str, lowercase: bool = True, trim_namespace: bool = True) -> dict[str, t.Any]:
        """The keys that start with ``namespace``, e.g. ``"IMAGE_STORE_"``."""
        rv = {}
        for k, v in self.items():
            if not k.startswith(namespace):
                continue
            key = k[len(namespace):] if trim_namespace else k
            rv[key.lower() if lowercase else key] = v
        return rv

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {dict.__repr__(self)}>"


def warn_unapplied_environment(
    config: t.Mapping[str, t.Any], logger: logging.Logger, environ: t.Mapping[str, str] = os.environ
) -> list[str]:
    """Warn about each tether setting the environment sets but the config does
    not hold: a bare ``BROADCAST_URL`` (the environment is shared with every
    other program, so only ``TETHER_BROADCAST_URL`` is taken to be the app's),
    or a ``TETHER_`` one while the app never called
    ``app.config.from_prefixed_env()``. A variable whose value the setting
    has, however the app got it there, is not reported. Returns the variables
    warned about."""
    reported = []
    for key in TETHER_SETTINGS:
        prefixed = next((p + key for p in reversed(ENV_PREFIXES) if p + key in environ), None)
        if prefixed is not None:
            name, fix = prefixed, "call app.config.from_prefixed_env() after Tether(__name__), which reads it"
        elif key in environ:
            name, fix = key, f"set TETHER_{key} instead, read by app.config.from_prefixed_env(), which the app must call"
        else:
            continue
        if _holds(config.get(key), environ[name]):
            continue
        logger.warning(
            "The environment sets %s, but the app's %s setting is not that value: tether takes settings from the "
            "environment only with the TETHER_ prefix (or FLASK_), and only when the app calls "
            "app.config.from_prefixed_env(). To use it, %s.", name, key, fix,
        )
        reported.append(name)
    return reported


def _holds(value: t.Any, text: str) -> bool:
    """Whether a setting is ``text``, as given or as ``from_prefixed_env`` parses it."""
    if value == text:
        return True
    try:
        return bool(value == json.loads(text))
    except ValueError:
        return False

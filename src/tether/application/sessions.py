"""Sessions: signed cookie sessions (itsdangerous) and the interface to plug in others."""

from __future__ import annotations

import hashlib
import typing as t
from collections.abc import MutableMapping
from datetime import UTC, datetime

from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.datastructures import CallbackDict

from .json.tag import TaggedJSONSerializer

if t.TYPE_CHECKING:
    from datetime import timedelta

    from .wrappers import Request, Response

__all__ = [
    "NullSession",
    "SessionApp",
    "SecureCookieSession",
    "SecureCookieSessionInterface",
    "SessionInterface",
    "SessionMixin",
    "SessionSealedError",
    "session_json_serializer",
]

#: The serializer signed session cookies use (Flask's name for it).
session_json_serializer = TaggedJSONSerializer()


class SessionApp(t.Protocol):
    """What a session interface needs of an application."""

    @property
    def config(self) -> dict[str, t.Any]: ...

    @property
    def secret_key(self) -> str | bytes | None: ...

    @property
    def permanent_session_lifetime(self) -> timedelta: ...


class SessionSealedError(RuntimeError):
    """The session was changed after the response headers (and its cookie) were sent."""


class SessionMixin(MutableMapping[str, t.Any]):
    """What every session offers: ``permanent`` and change tracking."""

    @property
    def permanent(self) -> bool:
        return self.get("_permanent", False)

    @permanent.setter
    def permanent(self, value: bool) -> None:
        self["_permanent"] = bool(value)

    new = False
    modified = True
    #: Set when read through ``ctx.session``; ``False`` until then, as in Flask,
    #: so an unread session of any class adds no ``Vary: Cookie``.
    accessed = False


class SecureCookieSession(CallbackDict[str, t.Any], SessionMixin):
    """A session kept in a signed cookie; ``modified`` tracks top-level changes
    (change a nested value and set ``modified = True`` yourself, as in Flask)."""

    modified = False
    accessed = False

    def __init__(self, initial: t.Any = None) -> None:
        self.sealed_reason: str | None = None

        def on_update(self: SecureCookieSession) -> None:
            if self.sealed_reason is not None:
                raise SessionSealedError(self.sealed_reason)
            self.modified = True

        super().__init__(initial, on_update)

    def seal(self, reason: str) -> None:
        """Refuse further changes: they could no longer reach the client."""
        self.sealed_reason = reason


class NullSession(SecureCookieSession):
    """The session when none can be stored (no ``SECRET_KEY``): empty, and any
    change raises an error that says how to fix it."""

    def _fail(self, *args: t.Any, **kwargs: t.Any) -> t.NoReturn:
        raise RuntimeError(
            "The session is unavailable because no secret key was set. Set "
            "app.secret_key (or the SECRET_KEY config value) to something unique and "
            "secret to use the session."
        )

    __setitem__ = __delitem__ = clear = pop = popitem = update = setdefault = _fail


class SessionInterface:
    """How sessions are opened from a request and saved into a response.

    Subclass it and set ``app.session_interface`` for server-side sessions.
    ``open_session`` returns ``None`` when no session can be had, which gives a
    :class:`NullSession`.
    """

    null_session_class = NullSession
    pickle_based = False

    def make_null_session(self, app: SessionApp) -> NullSession:
        return self.null_session_class()

    def is_null_session(self, obj: object) -> bool:
        return isinstance(obj, self.null_session_class)

    def get_cookie_name(self, app: SessionApp) -> str:
        return app.config["SESSION_COOKIE_NAME"]

    def get_cookie_domain(self, app: SessionApp) -> str | None:
        return app.config["SESSION_COOKIE_DOMAIN"] or None

    def get_cookie_path(self, app: SessionApp) -> str:
        return app.config["SESSION_COOKIE_PATH"] or app.config["APPLICATION_ROOT"]

    def get_cookie_httponly(self, app: SessionApp) -> bool:
        return app.config["SESSION_COOKIE_HTTPONLY"]

    def get_cookie_secure(self, app: SessionApp) -> bool:
        return app.config["SESSION_COOKIE_SECURE"]

    def get_cookie_samesite(self, app: SessionApp) -> str | None:
        return app.config["SESSION_COOKIE_SAMESITE"]

    def get_cookie_partitioned(self, app: SessionApp) -> bool:
        return app.config["SESSION_COOKIE_PARTITIONED"]

    def get_expiration_time(self, app: SessionApp, session: SessionMixin) -> datetime | None:
        if session.permanent:
            return datetime.now(UTC) + app.permanent_session_lifetime
        return None

    def should_set_cookie(self, app: SessionApp, session: SessionMixin) -> bool:
        """Set the cookie when the session changed, or to refresh a permanent one."""
        return session.modified or (session.permanent and app.config["SESSION_REFRESH_EACH_REQUEST"])

    def open_session(self, app: SessionApp, request: Request) -> SessionMixin | None:
        raise NotImplementedError(f"{type(self).__name__} must implement 'open_session'.")

    def save_session(self, app: SessionApp, session: SessionMixin, response: Response) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement 'save_session'.")


def _lazy_sha1(string: bytes = b"") -> t.Any:
    """``hashlib.sha1`` looked up when a session is signed, not at import: a
    FIPS build may lack SHA-1, and the app can then choose another digest."""
    return hashlib.sha1(string)


class SecureCookieSessionInterface(SessionInterface):
    """Sessions stored in a cookie signed with ``SECRET_KEY`` (and rotated keys in
    ``SECRET_KEY_FALLBACKS``). A tampered, expired or malformed cookie gives an
    empty session."""

    salt = "cookie-session"
    digest_method = staticmethod(_lazy_sha1)
    key_derivation = "hmac"
    serializer = session_json_serializer
    session_class = SecureCookieSession

    def __init__(self) -> None:
        self._serializers: dict[tuple[t.Any, ...], URLSafeTimedSerializer] = {}

    def get_signing_serializer(self, app: SessionApp) -> URLSafeTimedSerializer | None:
        """The serializer for the app's current keys; built once per key set
        (Flask builds one per request, a few microseconds each)."""
        if not app.secret_key:
            return None
        keys = (*app.config["SECRET_KEY_FALLBACKS"], app.secret_key)
        serializer = self._serializers.get(keys)
        if serializer is None:
            serializer = URLSafeTimedSerializer(
                list(keys),
                salt=self.salt,
                serializer=self.serializer,
                signer_kwargs={"key_derivation": self.key_derivation, "digest_method": self.digest_method},
            )
            self._serializers = {keys: serializer}
        return serializer

    def open_session(self, app: SessionApp, request: Request) -> SecureCookieSession | None:
        s = self.get_signing_serializer(app)
        if s is None:
            return None
        val = request.cookies.get(self.get_cookie_name(app))
        if not val:
            return self.session_class()
        max_age = int(app.permanent_session_lifetime.total_seconds())
        try:
            data = s.loads(val, max_age=max_age)
        except (BadSignature, ValueError, TypeError, KeyError):
            return self.session_class()
        if not isinstance(data, dict):
            return self.session_class()
        return self.session_class(data)

    def save_session(self, app: SessionApp, session: SessionMixin, response: Response) -> None:
        name = self.get_cookie_name(app)
        domain = self.get_cookie_domain(app)
        path = self.get_cookie_path(app)
        secure = self.get_cookie_secure(app)
        partitioned = self.get_cookie_partitioned(app)
        samesite = self.get_cookie_samesite(app)
        httponly = self.get_cookie_httponly(app)
        if session.accessed:
            response.vary.add("Cookie")
        if not session:
            if session.modified:
                response.delete_cookie(
                    name, domain=domain, path=path, secure=secure, partitioned=partitioned,
                    samesite=samesite, httponly=httponly,
                )
                response.vary.add("Cookie")
            return
        if not self.should_set_cookie(app, session):
            return
        serializer = self.get_signing_serializer(app)
        assert serializer is not None
        response.set_cookie(
            name,
            serializer.dumps(dict(session)),
            expires=self.get_expiration_time(app, session),
            httponly=httponly,
            domain=domain,
            path=path,
            secure=secure,
            partitioned=partitioned,
            samesite=samesite,
        )
        response.vary.add("Cookie")

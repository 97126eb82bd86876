"""Context-local storage: ``Local``, ``LocalStack`` and ``LocalProxy`` on :mod:`contextvars`.

Each thread starts with an empty context and each asyncio task runs in a copy of
the context it was created in, so values set here are isolated per thread and
per task: a task sees what its creator had set, and its own writes stay its own.
"""

from __future__ import annotations

import copy
import keyword
import math
import operator
import typing as t
from contextvars import ContextVar

T = t.TypeVar("T")

__all__ = ["Local", "LocalStack", "LocalProxy", "release_local"]


class Local:
    """A namespace whose attributes are local to the current thread or task.

    Values live in one ``ContextVar`` holding a dict that is copied on write, so a
    child task never changes what its parent sees.
    """

    __slots__ = ("_storage",)

    def __init__(self, context_var: ContextVar[dict[str, t.Any]] | None = None) -> None:
        if context_var is None:
            context_var = ContextVar(f"tether.Local<{id(self)}>.storage")
        object.__setattr__(self, "_storage", context_var)

    def __iter__(self) -> t.Iterator[tuple[str, t.Any]]:
        return iter(self._storage.get({}).items())

    def __call__(self, name: str, *, unbound_message: str | None = None) -> LocalProxy[t.Any]:
        """A proxy to the attribute ``name`` of this local."""
        return LocalProxy(self, name, unbound_message=unbound_message)

    def __release_local__(self) -> None:
        self._storage.set({})

    def __getattr__(self, name: str) -> t.Any:
        try:
            return self._storage.get({})[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: t.Any) -> None:
        values = self._storage.get({}).copy()
        values[name] = value
        self._storage.set(values)

    def __delattr__(self, name: str) -> None:
        values = self._storage.get({}).copy()
        try:
            del values[name]
        except KeyError:
            raise AttributeError(name) from None
        self._storage.set(values)


class LocalStack(t.Generic[T]):
    """A stack local to the current thread or task; ``top`` is the last pushed item.

    The stack is an immutable tuple swapped on every change, for the same
    parent/child isolation as :class:`Local`.
    """

    __slots__ = ("_storage",)

    def __init__(self, context_var: ContextVar[tuple[T, ...]] | None = None) -> None:
        if context_var is None:
            context_var = ContextVar(f"tether.LocalStack<{id(self)}>.storage")
        self._storage = context_var

    def __release_local__(self) -> None:
        self._storage.set(())

    def push(self, obj: T) -> tuple[T, ...]:
        """Push ``obj``; returns the new stack."""
        stack = (*self._storage.get(()), obj)
        self._storage.set(stack)
        return stack

    def pop(self) -> T | None:
        """Remove and return the top item, or ``None`` when the stack is empty."""
        stack = self._storage.get(())
        if not stack:
            return None
        self._storage.set(stack[:-1])
        return stack[-1]

    @property
    def top(self) -> T | None:
        """The top item, or ``None`` when the stack is empty."""
        stack = self._storage.get(())
        return stack[-1] if stack else None

    def __call__(self, name: str | None = None, *, unbound_message: str | None = None) -> LocalProxy[t.Any]:
        """A proxy to the top item, or to its attribute ``name``."""
        return LocalProxy(self, name, unbound_message=unbound_message)


def release_local(local: Local | LocalStack[t.Any]) -> None:
    """Clear ``local`` for the current thread or task only."""
    local.__release_local__()


class UnboundError(RuntimeError):
    """A :class:`LocalProxy` was used with nothing bound to it here."""


Message = t.Union[str, t.Callable[[], BaseException]]


def _unbound(message: Message | None) -> BaseException:
    if callable(message):
        return message()
    return UnboundError(message or "object is not bound")


def _make_getter(local: t.Any, name: str | None, message: Message | None) -> t.Callable[[], t.Any]:
    if isinstance(local, ContextVar):
        var = local
        if name is None:
            def get() -> t.Any:
                try:
                    return var.get()
                except LookupError:
                    raise _unbound(message) from None
        else:
            def get() -> t.Any:
                try:
                    obj = var.get()
                except LookupError:
                    raise _unbound(message) from None
                return getattr(obj, name)
    elif isinstance(local, Local):
        if name is None:
            raise TypeError("'name' is required when proxying a 'Local' object.")

        def get() -> t.Any:
            try:
                return getattr(local, name)
            except AttributeError:
                raise _unbound(message) from None
    elif isinstance(local, LocalStack):
        stack = local

        def get() -> t.Any:
            obj = stack.top
            if obj is None:
                raise _unbound(message)
            return obj if name is None else getattr(obj, name)
    elif callable(local):
        fn = local

        def get() -> t.Any:
            return fn() if name is None else getattr(fn(), name)
    else:
        raise TypeError(f"Don't know how to proxy {type(local)!r}.")
    return get


_OWN = frozenset({"_get_current_object", "__wrapped__", "__class__"})
_getattribute = object.__getattribute__
_setattr = object.__setattr__


class LocalProxy(t.Generic[T]):
    """Forwards every operation to the object that is current where it is used.

    Bind it to a ``ContextVar`` (optionally an attribute of its value), to a
    :class:`Local` and a name, to a :class:`LocalStack` (its top) or to a callable.

    Attribute access overrides ``__getattribute__`` rather than ``__getattr__``:
    the fallback path makes CPython fail a normal lookup first, which costs far
    more (bench/micro_bench.py measures proxies against direct access).

    A proxy bound to a ``ContextVar`` (the usual kind, made once at import) gets
    a class of its own whose ``__getattribute__`` closes over ``var.get`` and the
    attribute name: no slot read and no Python-level getter per access. Only
    ``var.get`` can raise the ``LookupError`` turned into the unbound error there.
    """

    __slots__ = ("_get_current_object", "__wrapped__")

    _get_current_object: t.Callable[[], T]

    def __new__(cls, local: t.Any, name: str | None = None, *, unbound_message: Message | None = None) -> LocalProxy[T]:
        if cls is LocalProxy and isinstance(local, ContextVar):
            cls = _context_var_proxy_class(local, name, unbound_message)
        return object.__new__(cls)

    def __init__(
        self,
        local: ContextVar[t.Any] | Local | LocalStack[t.Any] | t.Callable[[], T],
        name: str | None = None,
        *,
        unbound_message: Message | None = None,
    ) -> None:
        _setattr(self, "_get_current_object", _make_getter(local, name, unbound_message))
        _setattr(self, "__wrapped__", local)

    def __getattribute__(self, name: str) -> t.Any:
        if name in _OWN:
            return _own(self, name)
        return getattr(_getattribute(self, "_get_current_object")(), name)

    def __setattr__(self, name: str, value: t.Any) -> None:
        setattr(self._get_current_object(), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._get_current_object(), name)

    def __repr__(self) -> str:
        try:
            obj = self._get_current_object()
        except RuntimeError:
            return f"<{LocalProxy.__name__} unbound>"
        return repr(obj)

    def __bool__(self) -> bool:
        try:
            obj = self._get_current_object()
        except RuntimeError:
            return False
        return bool(obj)

    def __dir__(self) -> list[str]:
        try:
            obj = self._get_current_object()
        except RuntimeError:
            return []
        return dir(obj)

    def __hash__(self) -> int:
        return hash(self._get_current_object())

    def __iadd__(self, other: t.Any) -> t.Any:
        return _inplace(self, operator.iadd, other)

    def __isub__(self, other: t.Any) -> t.Any:
        return _inplace(self, operator.isub, other)

    def __imul__(self, other: t.Any) -> t.Any:
        return _inplace(self, operator.imul, other)

    def __ior__(self, other: t.Any) -> t.Any:
        return _inplace(self, operator.ior, other)

    def __iand__(self, other: t.Any) -> t.Any:
        return _inplace(self, operator.iand, other)


def _context_var_proxy_class(var: ContextVar[t.Any], attr: str | None, message: Message | None) -> type[LocalProxy[t.Any]]:
    namespace = {"get": var.get, "_OWN": _OWN, "_own": _own, "_unbound": _unbound, "message": message}
    if attr is None:
        current = "obj"
    elif attr.isidentifier() and not keyword.iskeyword(attr):
        current = f"obj.{attr}"
    else:
        current = f"getattr(obj, {attr!r})"
    exec(_GETATTRIBUTE.format(current=current), namespace)  # noqa: S102
    return type("LocalProxy", (LocalProxy,), {"__slots__": (), "__getattribute__": namespace["__getattribute__"]})


# The ``__getattribute__`` of a proxy bound to a ContextVar, written for its
# attribute: ``obj.request`` is a specialized attribute load where
# ``getattr(obj, attr)`` is a call. The proxy's own names (``_OWN``) are looked
# for only once the current object lacks them, so other attributes skip that
# lookup. A proxy read is on every ``request.x`` of every view, so its cost
# over the direct attribute is what "proxy: request.args" in bench/micro_bench.py
# measures.
_GETATTRIBUTE = """
def __getattribute__(self, name):
    try:
        obj = get()
    except LookupError:
        if name in _OWN:
            return _own(self, name)
        raise _unbound(message) from None
    try:
        return getattr({current}, name)
    except AttributeError:
        if name in _OWN:
            return _own(self, name)
        raise
"""


def _own(proxy: LocalProxy[t.Any], name: str) -> t.Any:
    if name == "__class__":
        # isinstance() asks for __class__: unbound, the proxy is just a proxy.
        try:
            return _getattribute(proxy, "_get_current_object")().__class__
        except RuntimeError:
            return type(proxy)
    return _getattribute(proxy, name)


def _round(self: LocalProxy[t.Any], ndigits: int | None = None) -> t.Any:
    return round(self._get_current_object(), ndigits)


def _deepcopy(self: LocalProxy[t.Any], memo: dict[int, t.Any]) -> t.Any:
    return copy.deepcopy(self._get_current_object(), memo)


# Called and assigned to as Python does it (not looked up by name), so that an
# object without the protocol raises Python's TypeError, as Werkzeug's proxy does.
def _call(self: LocalProxy[t.Any], *args: t.Any, **kwargs: t.Any) -> t.Any:
    return self._get_current_object()(*args, **kwargs)


def _setitem(self: LocalProxy[t.Any], key: t.Any, value: t.Any) -> None:
    self._get_current_object()[key] = value


def _inplace(proxy: LocalProxy[t.Any], op: t.Callable[[t.Any, t.Any], t.Any], other: t.Any) -> t.Any:
    obj = proxy._get_current_object()
    result = op(obj, other)
    return proxy if result is obj else result


def _unary(op: t.Callable[[t.Any], t.Any]) -> t.Callable[[LocalProxy[t.Any]], t.Any]:
    def method(self: LocalProxy[t.Any]) -> t.Any:
        return op(self._get_current_object())

    return method


def _binary(op: t.Callable[[t.Any, t.Any], t.Any]) -> t.Callable[[LocalProxy[t.Any], t.Any], t.Any]:
    def method(self: LocalProxy[t.Any], other: t.Any) -> t.Any:
        return op(self._get_current_object(), other)

    return method


def _reflected(op: t.Callable[[t.Any, t.Any], t.Any]) -> t.Callable[[LocalProxy[t.Any], t.Any], t.Any]:
    def method(self: LocalProxy[t.Any], other: t.Any) -> t.Any:
        return op(other, self._get_current_object())

    return method


def _by_name(name: str) -> t.Callable[..., t.Any]:
    def method(self: LocalProxy[t.Any], *args: t.Any, **kwargs: t.Any) -> t.Any:
        return getattr(self._get_current_object(), name)(*args, **kwargs)

    return method


_UNARY: dict[str, t.Callable[[t.Any], t.Any]] = {
    "__str__": str, "__bytes__": bytes, "__len__": len, "__iter__": iter, "__next__": next,
    "__reversed__": reversed, "__neg__": operator.neg, "__pos__": operator.pos, "__abs__": abs,
    "__invert__": operator.invert, "__int__": int, "__float__": float, "__complex__": complex,
    "__index__": operator.index, "__length_hint__": operator.length_hint, "__trunc__": math.trunc,
    "__floor__": math.floor, "__ceil__": math.ceil, "__copy__": copy.copy,
}
_BINARY: dict[str, t.Callable[[t.Any, t.Any], t.Any]] = {
    "__lt__": operator.lt, "__le__": operator.le, "__eq__": operator.eq, "__ne__": operator.ne,
    "__gt__": operator.gt, "__ge__": operator.ge, "__getitem__": operator.getitem,
    "__delitem__": operator.delitem, "__contains__": operator.contains,
    "__add__": operator.add, "__sub__": operator.sub, "__mul__": operator.mul,
    "__matmul__": operator.matmul, "__truediv__": operator.truediv,
    "__floordiv__": operator.floordiv, "__mod__": operator.mod, "__divmod__": divmod,
    "__pow__": pow, "__lshift__": operator.lshift, "__rshift__": operator.rshift,
    "__and__": operator.and_, "__xor__": operator.xor, "__or__": operator.or_,
    "__format__": format,
}
_BY_NAME = (
    "__enter__", "__exit__", "__aenter__", "__aexit__", "__await__",
    "__aiter__", "__anext__", "__instancecheck__", "__subclasscheck__",
)

for _name, _unary_op in _UNARY.items():
    setattr(LocalProxy, _name, _unary(_unary_op))
for _name, _binary_op in _BINARY.items():
    setattr(LocalProxy, _name, _binary(_binary_op))
    if _name in {"__add__", "__sub__", "__mul__", "__matmul__", "__truediv__", "__floordiv__",
                 "__mod__", "__divmod__", "__pow__", "__lshift__", "__rshift__", "__and__",
                 "__xor__", "__or__"}:
        setattr(LocalProxy, "__r" + _name[2:], _reflected(_binary_op))
for _name in _BY_NAME:
    setattr(LocalProxy, _name, _by_name(_name))
setattr(LocalProxy, "__round__", _round)
setattr(LocalProxy, "__deepcopy__", _deepcopy)
setattr(LocalProxy, "__call__", _call)
setattr(LocalProxy, "__setitem__", _setitem)
del _name, _unary_op, _binary_op

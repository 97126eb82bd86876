"""The storage layer: Local, LocalStack and LocalProxy on contextvars."""

from __future__ import annotations

import asyncio
import copy
import threading
import types
from contextvars import ContextVar

import pytest

from tether.locals import Local, LocalProxy, LocalStack, UnboundError, release_local


def test_local_is_isolated_per_thread() -> None:
    local = Local()
    local.value = "main"
    seen: dict[str, object] = {}

    def worker(name: str) -> None:
        seen[f"{name}-before"] = getattr(local, "value", None)
        local.value = name
        seen[name] = local.value

    threads = [threading.Thread(target=worker, args=(f"t{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert local.value == "main"
    for i in range(4):
        assert seen[f"t{i}-before"] is None
        assert seen[f"t{i}"] == f"t{i}"


def test_local_is_isolated_per_task() -> None:
    local = Local()

    async def task(name: str, gate: asyncio.Event) -> str:
        local.value = name
        await gate.wait()
        return local.value

    async def main() -> list[str]:
        gate = asyncio.Event()
        tasks = [asyncio.create_task(task(f"task{i}", gate)) for i in range(5)]
        await asyncio.sleep(0)
        gate.set()
        return await asyncio.gather(*tasks)

    assert asyncio.run(main()) == [f"task{i}" for i in range(5)]
    assert not hasattr(local, "value")


def test_child_task_sees_parent_value_but_does_not_change_it() -> None:
    local = Local()

    async def child() -> str:
        before = local.value
        local.value = "child"
        return before

    async def main() -> tuple[str, str]:
        local.value = "parent"
        before = await asyncio.create_task(child())
        return before, local.value

    assert asyncio.run(main()) == ("parent", "parent")


def test_local_attribute_errors_and_release() -> None:
    local = Local()
    with pytest.raises(AttributeError):
        local.missing  # noqa: B018
    local.a = 1
    local.b = 2
    assert dict(local) == {"a": 1, "b": 2}
    del local.a
    with pytest.raises(AttributeError):
        del local.a
    release_local(local)
    assert dict(local) == {}


def test_local_stack_push_pop_top() -> None:
    stack: LocalStack[int] = LocalStack()
    assert stack.top is None
    assert stack.pop() is None
    stack.push(1)
    stack.push(2)
    assert stack.top == 2
    assert stack.pop() == 2
    assert stack.top == 1
    release_local(stack)
    assert stack.top is None


def test_local_stack_is_isolated_per_thread() -> None:
    stack: LocalStack[str] = LocalStack()
    stack.push("main")
    tops: list[object] = []
    thread = threading.Thread(target=lambda: tops.append(stack.top))
    thread.start()
    thread.join()
    assert tops == [None]
    assert stack.top == "main"


def test_proxy_bindings() -> None:
    var: ContextVar[dict[str, int]] = ContextVar("var")
    class Obj:
        attr = "value"
    holder: ContextVar[Obj] = ContextVar("holder")
    local = Local()
    stack: LocalStack[list[int]] = LocalStack()

    by_var = LocalProxy(var)
    by_attr = LocalProxy(holder, "attr")
    by_local = local("name")
    by_stack = stack()
    by_stack_attr = stack("count")
    by_callable = LocalProxy(lambda: "called")

    var.set({"a": 1})
    holder.set(Obj())
    local.name = [1, 2]
    stack.push([3, 4, 3])
    assert by_var["a"] == 1
    assert by_attr == "value"
    assert by_local == [1, 2]
    assert by_stack == [3, 4, 3]
    assert by_stack_attr(3) == 2
    assert by_callable.upper() == "CALLED"


def test_unbound_proxy() -> None:
    proxy = LocalProxy(ContextVar("unset"), unbound_message="nothing here")
    with pytest.raises(UnboundError, match="nothing here"):
        proxy.anything  # noqa: B018
    assert isinstance(UnboundError("x"), RuntimeError)
    assert repr(proxy) == "<LocalProxy unbound>"
    assert not proxy
    assert dir(proxy) == []


def test_proxy_forwards_operations() -> None:
    var: ContextVar[object] = ContextVar("ops")
    p = LocalProxy(var)

    var.set([1, 2, 3])
    assert len(p) == 3 and list(p) == [1, 2, 3] and 2 in p and p[0] == 1
    assert list(reversed(p)) == [3, 2, 1]
    assert p == [1, 2, 3] and p != [1] and p < [2] and p <= [1, 2, 3] and p > [0] and p >= [1, 2, 3]
    assert p + [4] == [1, 2, 3, 4] and [0] + p == [0, 1, 2, 3] and p * 2 == [1, 2, 3] * 2
    p[0] = 9
    del p[1]
    assert var.get() == [9, 3]
    p += [5]
    assert var.get() == [9, 3, 5]
    assert isinstance(p, list)
    assert "append" in dir(p)
    assert repr(p) == "[9, 3, 5]" and str(p) == "[9, 3, 5]"
    assert copy.copy(p) == [9, 3, 5] and copy.copy(p) is not var.get()

    var.set(7)
    assert p + 1 == 8 and 1 + p == 8 and p - 1 == 6 and 10 - p == 3
    assert p * 2 == 14 and p / 7 == 1 and p // 2 == 3 and p % 4 == 3 and divmod(p, 2) == (3, 1)
    assert p**2 == 49 and 2**p == 128 and p << 1 == 14 and p >> 1 == 3
    assert p & 3 == 3 and p | 8 == 15 and p ^ 1 == 6 and -p == -7 and +p == 7 and abs(-p) == 7 and ~p == -8
    assert int(p) == 7 and float(p) == 7.0 and complex(p) == 7 and [0] * 7 == [0] * p
    assert round(p) == 7 and hash(p) == hash(7) and bool(p) and f"{p:03d}" == "007"

    var.set(lambda x: x * 2)
    assert p(21) == 42


def test_proxy_attribute_set_and_delete() -> None:
    class Box:
        pass
    var: ContextVar[Box] = ContextVar("box")
    box = Box()
    var.set(box)
    p = LocalProxy(var)
    p.x = 1
    assert box.x == 1
    del p.x
    assert not hasattr(box, "x")
    assert p._get_current_object() is box


def test_proxy_with_and_async_protocols() -> None:
    events: list[str] = []

    class Resource:
        def __enter__(self) -> str:
            events.append("enter")
            return "res"

        def __exit__(self, *exc: object) -> None:
            events.append("exit")

        async def __aenter__(self) -> str:
            return "ares"

        async def __aexit__(self, *exc: object) -> None:
            events.append("aexit")

        def __aiter__(self) -> Resource:
            self.n = 0
            return self

        async def __anext__(self) -> int:
            self.n += 1
            if self.n > 2:
                raise StopAsyncIteration
            return self.n

    var: ContextVar[object] = ContextVar("res")
    var.set(Resource())
    p = LocalProxy(var)
    with p as value:
        assert value == "res"

    async def main() -> tuple[str, list[int], int]:
        async with p as avalue:
            items = [i async for i in p]
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(5)
        var.set(fut)
        return avalue, items, await p

    assert asyncio.run(main()) == ("ares", [1, 2], 5)
    assert events == ["enter", "exit", "aexit"]


def test_proxy_copy_round_and_rounding_functions() -> None:
    import math

    var: ContextVar[object] = ContextVar("num")
    p = LocalProxy(var)
    var.set(2.567)
    assert round(p, 1) == 2.6 and math.floor(p) == 2 and math.ceil(p) == 3 and math.trunc(p) == 2
    nested = {"a": [1]}
    var.set(nested)
    deep = copy.deepcopy(p)
    assert deep == nested and deep["a"] is not nested["a"]


def test_isinstance_on_unbound_proxy_is_false_not_an_error() -> None:
    proxy = LocalProxy(ContextVar("unbound"), unbound_message="unbound")
    assert not isinstance(proxy, dict)
    assert isinstance(proxy, LocalProxy)


def test_a_proxy_to_an_attribute_that_is_no_identifier() -> None:
    var: ContextVar[object] = ContextVar("odd_names")
    odd = LocalProxy(var, "not-a-name")
    keyword_named = LocalProxy(var, "class")
    var.set(types.SimpleNamespace(**{"not-a-name": [1, 2], "class": "x"}))
    assert odd.count(1) == 1 and len(odd) == 2
    assert keyword_named.upper() == "X"
    assert odd._get_current_object() == [1, 2]


def test_a_lookup_error_of_the_current_object_is_not_taken_for_an_unbound_proxy() -> None:
    class Context:
        @property
        def session(self) -> object:
            raise KeyError("the session store lost it")

    var: ContextVar[object] = ContextVar("failing")
    proxy = LocalProxy(var, "session")
    var.set(Context())
    with pytest.raises(KeyError, match="lost it"):
        proxy.get("x")

"""The fast router answers only when its answer is Werkzeug's."""

from __future__ import annotations

import itertools
import os
import typing as t

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, RequestRedirect, Rule

from tether.application.routing import FastRouter

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))

RULE_SETS = {
    "overlaps": [
        Rule("/", endpoint="index"),
        Rule("/user/me", endpoint="me"),
        Rule("/user/<int:id>", endpoint="user_id"),
        Rule("/user/<name>", endpoint="user_name"),
        Rule("/user/<int:id>/posts", endpoint="posts"),
        Rule("/<page>", endpoint="page"),
        Rule("/<a>/<b>/<c>", endpoint="three"),
        Rule("/files/<path:p>", endpoint="files"),
        Rule("/<path:anything>/edit", endpoint="edit"),
    ],
    "slashes": [
        Rule("/folder/", endpoint="folder"),
        Rule("/<name>", endpoint="name"),
        Rule("/items/<int:id>/", endpoint="item"),
        Rule("/items/<name>", endpoint="item_name"),
        Rule("/loose", endpoint="loose", strict_slashes=False),
    ],
    "defaults_and_methods": [
        Rule("/page/", endpoint="page", defaults={"n": 1}),
        Rule("/page/<int:n>", endpoint="page"),
        Rule("/post", endpoint="post", methods=["POST"]),
        Rule("/post", endpoint="get_post", methods=["GET"]),
        Rule("/old", redirect_to="/new", endpoint="old"),
        Rule("/new", endpoint="new"),
        Rule("/choice/<any(a, b):x>", endpoint="choice"),
        Rule("/u/<uuid:u>", endpoint="uuid"),
        Rule("/f/<float:x>", endpoint="float"),
        Rule("/n/<int(min=5):n>", endpoint="bounded"),
    ],
}

PATHS = [
    "/", "/user/me", "/user/3", "/user/bob", "/user/3/posts", "/user/bob/posts", "/about", "/a/b/c",
    "/files/x/y.txt", "/files/", "/x/y/edit", "/folder", "/folder/", "/bob", "/items/3", "/items/3/",
    "/items/x", "/loose", "/loose/", "/page/", "/page/1", "/page/2", "/post", "/old", "/new",
    "/choice/a", "/choice/c", "/u/12345678-1234-5678-1234-567812345678", "/f/1.5", "/f/1", "/n/3", "/n/7",
    "//double", "/user//3", "/a/b/c/d", "/user/%20x",
]


def werkzeug_answer(url_map: Map, path: str, method: str) -> object:
    adapter = url_map.bind("localhost", "/")
    try:
        rule, args = adapter.match(path, method, return_rule=True)
    except RequestRedirect as e:
        return ("redirect", e.new_url)
    except HTTPException as e:
        return ("error", e.code)
    return (rule, args)


@pytest.mark.parametrize("name", list(RULE_SETS))
def test_fast_router_agrees_with_werkzeug(name: str) -> None:
    url_map = Map([r.empty() for r in RULE_SETS[name]])
    router = FastRouter(url_map)
    answered = 0
    for path, method in itertools.product(PATHS, ["GET", "POST", "HEAD"]):
        fast = router.match(path, method)
        if fast is None:
            continue
        answered += 1
        assert fast == werkzeug_answer(url_map, path, method), (path, method)
    assert answered >= 8


def test_fast_router_answers_the_common_cases() -> None:
    url_map = Map([Rule("/", endpoint="index"), Rule("/user/<int:id>", endpoint="user", methods=["GET"])])
    router = FastRouter(url_map)
    assert router.match("/", "GET") is not None
    rule, args = router.match("/user/42", "GET")  # type: ignore[misc]
    assert rule.endpoint == "user" and args == {"id": 42}
    assert router.match("/user/x", "GET") is None
    assert router.match("/user/42", "POST") is None


def test_host_matching_disables_the_fast_path() -> None:
    url_map = Map([Rule("/", endpoint="index", host="example.com")], host_matching=True)
    assert FastRouter(url_map).match("/", "GET") is None


# Property-based: generated rule sets and paths; whenever the fast router
# answers, its answer is Werkzeug's (rule, arguments), and it answers often.
VARIABLES = ["<{}>", "<int:{}>", "<path:{}>", "<any(a, b):{}>", "<float:{}>", "<int(min=3):{}>", "<string(length=2):{}>"]
STATIC = ["a", "b", "user", "ünï", "x y"]
segments = st.one_of(st.sampled_from(STATIC), st.sampled_from(VARIABLES))


@st.composite
def rules(draw: st.DrawFn, index: int) -> Rule:
    parts = [part.format(f"v{i}") for i, part in enumerate(draw(st.lists(segments, max_size=3)))]
    source = "/" + "/".join(parts) + ("/" if parts and draw(st.booleans()) else "")
    options: dict[str, t.Any] = {
        "methods": draw(st.one_of(st.none(), st.lists(st.sampled_from(["GET", "POST", "PUT"]), min_size=1, unique=True))),
        "strict_slashes": draw(st.sampled_from([None, False])),
    }
    extra = draw(st.sampled_from([None, None, None, "defaults", "redirect", "merge"]))
    if extra == "defaults":
        options["defaults"] = {"page": 1}
    elif extra == "redirect":
        options["redirect_to"] = "/a"
    elif extra == "merge":
        options["merge_slashes"] = False
    return Rule(source, endpoint=f"e{index % 4}", **options)


@st.composite
def rule_sets(draw: st.DrawFn) -> list[Rule]:
    count = draw(st.integers(1, 6))
    return [draw(rules(i)) for i in range(count)]


PATH_PARTS = st.sampled_from(["a", "b", "user", "ünï", "x y", "3", "12", "1.5", "ab", "", "-4", "c", "a\n", "3\n", "\n"])


@st.composite
def request_paths(draw: st.DrawFn) -> str:
    return "/" + "/".join(draw(st.lists(PATH_PARTS, max_size=4))) + draw(st.sampled_from(["", "", "/"]))


def test_the_fast_router_answers_as_werkzeug_on_generated_rules() -> None:
    answered: list[int] = []

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(rule_set=rule_sets(), paths=st.lists(request_paths(), min_size=1, max_size=8),
           method=st.sampled_from(["GET", "POST", "HEAD", "PUT"]))
    def check(rule_set: list[Rule], paths: list[str], method: str) -> None:
        try:
            url_map = Map(rule_set)
        except (ValueError, AssertionError):
            assume(False)
        router = FastRouter(url_map)
        for path in [*paths, *(r.rule for r in rule_set if not r.arguments)]:
            fast = router.match(path, method)
            if fast is not None:
                answered.append(1)
                assert fast == werkzeug_answer(url_map, path, method), (path, method, [r.rule for r in rule_set])

    check()
    assert len(answered) >= EXAMPLES // 4, "the fast router should answer the plain cases itself"


def test_a_static_rule_with_defaults_is_not_shadowed_by_a_later_one() -> None:
    url_map = Map([Rule("/", endpoint="first", defaults={"page": 1}), Rule("/", endpoint="second")])
    fast = FastRouter(url_map).match("/", "GET")
    assert fast is None or fast == werkzeug_answer(url_map, "/", "GET")
    assert werkzeug_answer(url_map, "/", "GET")[0].endpoint == "first"  # type: ignore[index]

"""The fast router answers only when its answer is Werkzeug's."""

from __future__ import annotations

import itertools

import pytest
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, RequestRedirect, Rule

from tether.application.routing import FastRouter

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

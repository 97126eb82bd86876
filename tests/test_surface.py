"""The whole of Flask's surface, compared mechanically: every module of the
installed Flask 3.1.3, every module-level name (imported modules and underscore
names too), every class's members and the attributes its instances hold, the Jinja
environment and what the signals send, against tether under ``alias_flask()``.

Each side is read in a process of its own by surface_probe.py. A difference
fails unless :data:`surface_allowlist.ALLOWED` lists it with its reason; the
reasons kept on purpose are the "differs on purpose" list of docs/coming-from-flask.md.
"""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
import types
import typing as t
from pathlib import Path

import pytest

import tether
from surface_allowlist import ALLOWED, ON_PURPOSE, PENDING

HERE = Path(__file__).parent
FLASK_PAGE = HERE.parent / "docs" / "coming-from-flask.md"


def probe(side: str, plan: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
    result = subprocess.run(
        [sys.executable, str(HERE / "surface_probe.py"), side], input=json.dumps(plan), cwd=HERE,
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return t.cast("dict[str, t.Any]", json.loads(result.stdout))


@pytest.fixture(scope="module")
def surfaces() -> tuple[dict[str, str], dict[str, str]]:
    pytest.importorskip("flask")
    flask = probe("flask")
    return flask["surface"], probe("tether", flask["plan"])["surface"]


def differences(flask: dict[str, str], tether: dict[str, str]) -> dict[str, str]:
    """Flask's keys whose description tether does not match (tether's extras are not
    differences: code written for Flask never reaches them)."""
    return {key: f"flask {value!r} != tether {tether.get(key, '<absent>')!r}"
            for key, value in flask.items() if tether.get(key) != value}


def allowed(key: str) -> str | None:
    return next((reason for pattern, reason in ALLOWED.items() if fnmatch.fnmatchcase(key, pattern)), None)


def test_the_probe_reads_the_whole_of_flask(surfaces: tuple[dict[str, str], dict[str, str]]) -> None:
    flask, _ = surfaces
    kinds = {key.partition(":")[0] for key in flask}
    assert kinds == {"module", "name", "member", "instance", "jinja", "signal"}, kinds
    assert sum(key.startswith("module:") for key in flask) >= 20
    for key in ("name:flask.cli.click", "name:flask.helpers.werkzeug", "name:flask.json.dumps",
                "member:flask.Flask._got_first_request", "member:flask.app.App._get_exc_class_and_code",
                "instance:flask.ctx.RequestContext._session", "name:flask.ctx._AppCtxGlobals",
                "jinja:globals.url_for", "signal:error"):
        assert key in flask, key


def test_tether_under_the_alias_has_flasks_surface(surfaces: tuple[dict[str, str], dict[str, str]]) -> None:
    unexplained = [f"{key}: {why}" for key, why in differences(*surfaces).items() if allowed(key) is None]
    assert not unexplained, "\n".join(["differences from Flask (fix them, or list them in surface_allowlist.py):",
                                       *unexplained])


def test_every_allowlist_entry_is_still_a_difference(surfaces: tuple[dict[str, str], dict[str, str]]) -> None:
    found = differences(*surfaces)
    stale = [pattern for pattern in ALLOWED if not any(fnmatch.fnmatchcase(key, pattern) for key in found)]
    assert not stale, f"fixed: remove from surface_allowlist.py: {stale}"


def test_every_reason_is_on_purpose_or_pending() -> None:
    assert set(ALLOWED.values()) <= set(ON_PURPOSE) | set(PENDING)


def test_the_docs_list_every_difference_kept_on_purpose() -> None:
    text = " ".join(FLASK_PAGE.read_text().split())
    section = text.partition("**What else differs, on purpose**")[2].partition("## ")[0]
    missing = [reason for reason in ON_PURPOSE if " ".join(reason.split()) not in section]
    assert not missing, f"add to docs/coming-from-flask.md's 'differs on purpose': {missing}"
    assert re.search(r"tests/test_surface\.py", text)


def test_tethers_names_are_its_all() -> None:
    """``dir(tether)`` and ``import *`` give the public names, not ``annotations``,
    ``t`` or the subpackages; every other public name of the module is listed."""
    assert [name for name in dir(tether) if not name.startswith("__")] == sorted(tether.__all__)
    namespace: dict[str, object] = {}
    exec("from tether import *", namespace)
    assert sorted(name for name in namespace if name != "__builtins__") == sorted(tether.__all__)
    unlisted = [name for name, value in vars(tether).items()
                if not name.startswith("_") and not isinstance(value, types.ModuleType) and name not in tether.__all__]
    assert unlisted == []


def test_what_the_docs_tell_users_to_catch_or_connect_is_in_tether() -> None:
    from tether.live.background import Job
    from tether.live.broadcast import BroadcastUnavailable, Gap, SubscriberTooSlow
    from tether.signals import broadcast_health_changed, periodic_run_failed, spawned_work_failed

    assert (tether.Job, tether.BroadcastUnavailable, tether.Gap, tether.SubscriberTooSlow) == (
        Job, BroadcastUnavailable, Gap, SubscriberTooSlow)
    assert (tether.spawned_work_failed, tether.periodic_run_failed, tether.broadcast_health_changed) == (
        spawned_work_failed, periodic_run_failed, broadcast_health_changed)


def test_one_class_is_named_blueprint() -> None:
    named = {f"{module.__name__}.{name}" for module in list(sys.modules.values())
             if module is not None and module.__name__.startswith("tether")
             for name, value in vars(module).items() if isinstance(value, type) and value.__name__ == "Blueprint"}
    assert {value for value in named if not value.startswith(("tether.app.", "tether.Blueprint"))} == set()
    assert tether.Blueprint.__module__ == "tether.app"

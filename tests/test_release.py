"""A release that installs. The sdist and the wheel are built as a release is
(``python -m build``: the sdist, then the wheel from the sdist), pass ``twine
check``, and hold what they must; the wheel, installed into a fresh venv with its
dependencies from PyPI, serves the tutorial's board under its own ``tether``
command. And one version: the package's, the docs' and the changelog's latest
release are the same."""

from __future__ import annotations

import email
import email.message
import json
import os
import re
import runpy
import shutil
import subprocess
import sys
import tarfile
import tomllib
import urllib.request
import zipfile
from collections.abc import Iterator
from http.client import HTTPConnection, HTTPResponse
from pathlib import Path

import pytest
from packaging.version import Version

import tether
from support import free_port, missing, terminate, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
VERSION = tether.__version__
SDIST = f"tether-{VERSION}.tar.gz"
WHEEL = f"tether-{VERSION}-py3-none-any.whl"
#: What the source tree has that a release is not built from.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", "_build", ".*cache", ".hypothesis",
    "instance", "*.db",
)
#: The environment of the build and of the installed app: nothing of this checkout's.
OWN = ("PYTHONPATH", "FLASK_APP", "FLASK_DEBUG", "TETHER_APP", "TETHER_DEBUG", "FLASK_RUN_FROM_CLI")


def clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in OWN}


def released_versions(changelog: str) -> list[str]:
    """The versions of CHANGELOG.md's ``## X.Y.Z`` headings, in the file's order."""
    return re.findall(r"^## (\d+\.\d+\.\d+\S*)\s*$", changelog, re.MULTILINE)


def test_one_version_for_the_package_the_docs_and_the_changelog(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rule: ``tether.__version__`` is the latest release of CHANGELOG.md; what
    came after it is under ``## Unreleased``, the first heading. Releasing renames
    that heading to the new version and sets ``__version__`` to it, in one commit."""
    changelog = (ROOT / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## (.+?)\s*$", changelog, re.MULTILINE)
    releases = released_versions(changelog)
    assert releases and releases[0] == VERSION, f"CHANGELOG.md's latest release is {releases[:1]}, tether's {VERSION}"
    assert headings[0] in ("Unreleased", VERSION), headings[0]
    assert releases == sorted(releases, key=Version, reverse=True), "newest release first"
    assert "Unreleased" not in headings[1:], "Unreleased is the first heading or none"

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "tether.__version__"}

    monkeypatch.setattr(sys, "path", list(sys.path))  # conf.py puts src/ on it
    conf = runpy.run_path(str(ROOT / "docs" / "conf.py"))
    assert conf["release"] == conf["version"] == VERSION

    pages = [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    named = {(page.name, found) for page in pages for found in re.findall(r"tether-(\d+\.\d+\.\d+)", page.read_text())}
    assert all(found == VERSION for _, found in named), f"pages naming another version: {sorted(named)}"


def require_pypi() -> None:
    """The build (setuptools in its isolated environment) and the fresh venv (the
    wheel's dependencies) come from the package index."""
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/").rstrip("/")
    try:
        with urllib.request.urlopen(f"{index}/setuptools/", timeout=15) as answer:
            answer.read(1)
    except OSError as exc:
        missing(f"The package index ({index}) is unreachable: {exc}", "building and installing a release needs it")


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel, built from a copy of the source tree (the build
    writes egg-info next to the sources) into a temporary folder."""
    require_pypi()
    work = tmp_path_factory.mktemp("release")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(work / "dist"), str(source)],
        env=clean_env(), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, f"python -m build failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert sorted(path.name for path in (work / "dist").iterdir()) == sorted([SDIST, WHEEL])
    return work / "dist"


def test_twine_accepts_both(dist: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(dist / SDIST), str(dist / WHEEL)],
        env=clean_env(), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2, result.stdout


def assert_metadata(metadata: email.message.Message) -> None:
    assert metadata["Name"] == "tether" and metadata["Version"] == VERSION
    assert metadata["License-Expression"] == "BSD-3-Clause" and metadata.get_all("License-File") == ["LICENSE"]
    urls = dict(line.split(", ", 1) for line in metadata.get_all("Project-URL") or [])
    assert set(urls) == {"Documentation", "Changelog", "Source"}, urls
    assert "Typing :: Typed" in (metadata.get_all("Classifier") or [])


def test_the_sdist_holds_the_license_the_changelog_and_the_readme(dist: Path) -> None:
    top = f"tether-{VERSION}"
    with tarfile.open(dist / SDIST) as sdist:
        names = set(sdist.getnames())
        for name in ("LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml"):
            assert f"{top}/{name}" in names, name
        changelog = sdist.extractfile(f"{top}/CHANGELOG.md")
        assert changelog is not None and changelog.read() == (ROOT / "CHANGELOG.md").read_bytes()
        info = sdist.extractfile(f"{top}/PKG-INFO")
        assert info is not None
        assert_metadata(email.message_from_bytes(info.read()))


def test_the_wheel_holds_the_static_scripts_the_typing_marker_and_the_license(dist: Path) -> None:
    scripts = sorted(path.name for path in (ROOT / "src" / "tether" / "live" / "static").glob("*.js"))
    assert scripts
    with zipfile.ZipFile(dist / WHEEL) as wheel:
        names = set(wheel.namelist())
        expected = {f"tether/live/static/{name}" for name in scripts}
        expected |= {"tether/py.typed", f"tether-{VERSION}.dist-info/licenses/LICENSE"}
        assert expected <= names, sorted(expected - names)
        assert_metadata(email.message_from_bytes(wheel.read(f"tether-{VERSION}.dist-info/METADATA")))
        assert "tether = tether.cli.commands:main" in wheel.read(f"tether-{VERSION}.dist-info/entry_points.txt").decode()


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed (dependencies from the index, through
    pip's cache); its ``bin`` folder."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=120)
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(dist / WHEEL)],
        env=clean_env(), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, f"pip install of the wheel failed:\n{result.stdout}\n{result.stderr}"
    return venv / "bin"


@pytest.fixture
def tutorial(tmp_path: Path) -> Path:
    """The tutorial's board app, as its reader has it: a folder outside any checkout."""
    source = ROOT / "docs" / "examples" / "tutorial"
    shutil.copy(source / "board.py", tmp_path)
    shutil.copytree(source / "templates", tmp_path / "templates")
    return tmp_path


def test_the_installed_wheel_is_the_one_imported(installed: Path, tutorial: Path) -> None:
    result = subprocess.run(
        [str(installed / "python"), "-c", "import json, tether; print(json.dumps([tether.__file__, tether.__version__]))"],
        cwd=tutorial, env=clean_env(), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    where, version = json.loads(result.stdout)
    assert Path(where).is_relative_to(installed.parent) and version == VERSION
    shown = subprocess.run([str(installed / "tether"), "--version"], cwd=tutorial, env=clean_env(),
                           capture_output=True, text=True, timeout=60)
    assert f"tether {VERSION} " in shown.stdout, shown.stdout + shown.stderr


@pytest.fixture
def board(installed: Path, tutorial: Path) -> Iterator[int]:
    """``tether --app board run`` from the installed wheel, as the tutorial's step 6
    runs it, its clock ticking every half second; its port."""
    port = free_port()
    proc = subprocess.Popen(
        [str(installed / "tether"), "--app", "board", "run", "--port", str(port)],
        cwd=tutorial, env={**clean_env(), "TETHER_TICK_SECONDS": "0.5"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, proc, timeout=30)
        yield port
    finally:
        terminate(proc, 15)
        assert proc.stdout is not None
        print(proc.stdout.read().decode())  # shown when the test fails


def next_event(stream: HTTPResponse) -> dict[str, str]:
    """The fields of the next event of an SSE stream, comments (keep-alives) skipped."""
    fields: dict[str, str] = {}
    while True:
        line = stream.readline().decode()
        assert line, "the stream ended"
        if line == "\n" and fields:
            return fields
        if line.strip() and not line.startswith(":"):
            name, _, value = line.rstrip("\n").partition(":")
            fields[name] = value.removeprefix(" ")


def test_the_installed_wheel_serves_the_tutorial_board(board: int) -> None:
    """The page; a note posted over the WebSocket, replayed on the board's SSE
    stream to a page that saw the one before; then the clock's ticks."""
    from websockets.sync.client import connect

    page = HTTPConnection("127.0.0.1", board, timeout=20)
    page.request("GET", "/")
    answer = page.getresponse()
    assert answer.status == 200 and 'new EventSource("/events")' in answer.read().decode()
    page.close()

    with connect(f"ws://127.0.0.1:{board}/notes?name=wheel", open_timeout=20) as notes:
        notes.send("first")
        first = json.loads(notes.recv(timeout=20))["posted"]
        notes.send("from the wheel")
        second = json.loads(notes.recv(timeout=20))["posted"]

    stream = HTTPConnection("127.0.0.1", board, timeout=20)
    stream.request("GET", "/events", headers={"Last-Event-ID": first})
    events = stream.getresponse()
    assert events.status == 200 and events.getheader("Content-Type", "").startswith("text/event-stream")
    event = next_event(events)
    while '"kind": "tick"' in event["data"]:  # the clock may have ticked in between
        event = next_event(events)
    assert event["id"] == second
    assert json.loads(event["data"]) == {"kind": "note", "by": "wheel", "text": "from the wheel"}
    assert json.loads(next_event(events)["data"])["kind"] == "tick"
    stream.close()

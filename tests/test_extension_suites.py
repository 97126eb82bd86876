"""The big Flask extensions' own test suites, run once on Flask and once with
``flask`` aliased to tether: every test that passes on Flask passes on tether.

Failures common to both runs come from the environment (no Docker for
Flask-Limiter's storage tests, no memcached, SQLAlchemy releases newer than
Flask-SQLAlchemy 3.1.1, Babel's data for the made-up locale one Flask-Security
test reads, gevent being installed so Flask-SocketIO's background task is a
greenlet its test's ``time.sleep`` never yields to), not from tether.
Flask-Caching starts its own redis-server on port 6360; no suite touches the
shared Redis on 6379. Flask-Security-Too's ~960 tests run on two workers
(pytest-xdist): serially its two runs alone would take five minutes.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import time
import typing as t
from pathlib import Path

import pytest

from sdist import fetch, results, run_suite

#: requirement, archive, SHA-256 of the published source distribution, pytest
#: arguments (options, then the tests to run).
SUITES: dict[str, tuple[str, str, str, list[str]]] = {
    "Flask-Login": (
        "Flask-Login==0.6.3", "Flask-Login-0.6.3.tar.gz",
        "5e23d14a607ef12806c699590b89d0f0e0d67baeec599d75947bf9c147330333", ["tests"],
    ),
    "Flask-SQLAlchemy": (
        "flask-sqlalchemy==3.1.1", "flask_sqlalchemy-3.1.1.tar.gz",
        "e4b68bb881802dda1a7d878b2fc84c06d1ee57fb40b874d3dc97dabfa36b8312", ["tests"],
    ),
    "Flask-WTF": (
        "flask-wtf==1.3.0", "flask_wtf-1.3.0.tar.gz",
        "61d5dabc50c3df885c297dcbd80810443a5d632106c8a69cab8ce740f0cdd7cc", ["tests"],
    ),
    "flask-cors": (
        "flask-cors==6.0.5", "flask_cors-6.0.5.tar.gz",
        "30c5031552cd59f620ac0c8211dac45b345d3b2df310e7721879e4f46ef9c601", ["tests"],
    ),
    "Flask-Caching": (
        "flask-caching==2.5.1", "flask_caching-2.5.1.tar.gz",
        "f75b451fde3faac0e278da72263818134deca8c4ba6bb07b9b3b238991368dae", ["tests"],
    ),
    "Flask-Limiter": (
        "flask-limiter==4.1.1", "flask_limiter-4.1.1.tar.gz",
        "ca11608fc7eec43dcea606964ca07c3bd4ec1ae89043a0f67f717899a4f48106",
        ["-o", "addopts=", "-p", "no:randomly", "tests"],  # its addopts need pytest-cov
    ),
    "Flask-Migrate": (
        "flask-migrate==4.1.0", "flask_migrate-4.1.0.tar.gz",
        "1a336b06eb2c3ace005f5f2ded8641d534c18798d64061f6ff11f79e1434126d", ["tests"],
    ),
    "flask-smorest": (
        "flask-smorest==0.47.0", "flask_smorest-0.47.0.tar.gz",
        "a415ce7db3d7e63dd854eb16d59047686dbf5d31c4913e245fa5657f88e7788d", ["tests"],
    ),
    # Flask-Security-Too publishes the same tree under the name Flask-Security
    # since 5.6 (only PKG-INFO's Name differs); pip refuses the -Too sdist by
    # name, as its metadata says flask-security.
    "Flask-Security-Too": (
        "flask-security==5.9.2", "flask_security-5.9.2.tar.gz",
        "215b1f978c203c646cfa87667e4a193b63aaf51a18403c49eccc9ff1b1bfad8f", ["-n", "2", "tests"],
    ),
    "Flask-SocketIO": (
        "flask-socketio==5.7.0", "flask_socketio-5.7.0.tar.gz",
        "aa01e50106962808dadc245407c3b6354295b1526e888bd154dc7ff4801a7c88", ["test_socketio.py"],
    ),
}


def flask_command(folder: Path) -> Path:
    """A ``flask`` command that runs tether's CLI with the alias installed, as
    an app's own launcher would (Flask-Migrate's tests run ``flask db``)."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "flask"
    script.write_text(f"#!{sys.executable}\nfrom tether.compat import main\nmain()\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return folder


@pytest.mark.parametrize("name", list(SUITES))
def test_extension_suite_passes_on_tether_as_on_flask(name: str, tmp_path: Path) -> None:
    requirement, archive, sha256, args = SUITES[name]
    tree = fetch(requirement, archive, sha256)
    bin_dir = str(Path(sys.executable).parent)  # the real `flask` command, for the Flask run
    outcomes: dict[str, dict[str, str]] = {}
    logs: dict[str, t.Any] = {}
    seconds: dict[str, float] = {}
    for mode in ("flask", "tether"):
        work = tmp_path / mode
        shutil.copytree(tree, work, symlinks=True)  # each run from a pristine tree: suites write files next to their tests
        path = [str(flask_command(tmp_path / "bin")), bin_dir] if mode == "tether" else [bin_dir]
        env = {"PATH": os.pathsep.join([*path, os.environ.get("PATH", "")])}
        started = time.monotonic()
        logs[mode] = run_suite(work, args, tmp_path / f"{mode}.xml", alias=mode == "tether", env=env)
        seconds[mode] = time.monotonic() - started
        outcomes[mode] = results(tmp_path / f"{mode}.xml")
    on_flask = {test for test, outcome in outcomes["flask"].items() if outcome == "passed"}
    on_tether = {test for test, outcome in outcomes["tether"].items() if outcome == "passed"}
    assert on_flask, logs["flask"].stdout[-3000:]
    assert on_flask <= on_tether, f"pass on Flask only: {sorted(on_flask - on_tether)}\n{logs['tether'].stdout[-5000:]}"
    print(
        f"{name}: {len(on_flask)} of {len(outcomes['flask'])} pass on Flask ({seconds['flask']:.0f} s), "
        f"{len(on_tether)} of {len(outcomes['tether'])} on tether ({seconds['tether']:.0f} s)"
    )

"""app.config loaders."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

import tether
from tether.application.config import Config


class Settings:
    SECRET_KEY = "from object"
    lower = "ignored"


def test_from_object_mapping_and_namespace(tmp_path: Path) -> None:
    config = Config(tmp_path)
    config.from_object(Settings)
    config.from_mapping({"DEBUG": True, "lower": 1}, IMAGE_STORE_TYPE="fs", IMAGE_STORE_PATH="/img")
    assert config["SECRET_KEY"] == "from object" and config["DEBUG"] is True and "lower" not in config
    assert config.get_namespace("IMAGE_STORE_") == {"type": "fs", "path": "/img"}
    assert config.get_namespace("IMAGE_STORE_", lowercase=False, trim_namespace=False) == {
        "IMAGE_STORE_TYPE": "fs", "IMAGE_STORE_PATH": "/img",
    }
    config.from_object("tests.test_config.Settings")
    assert config["SECRET_KEY"] == "from object"


def test_from_pyfile_and_from_file_and_envvar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "settings.py").write_text("VALUE = 1 + 1\nlower = 3\n")
    (tmp_path / "settings.json").write_text(json.dumps({"JSON_VALUE": [1, 2], "lower": 1}))
    config = Config(tmp_path)
    assert config.from_pyfile("settings.py") and config["VALUE"] == 2 and "lower" not in config
    assert config.from_file("settings.json", load=json.load) and config["JSON_VALUE"] == [1, 2]
    assert config.from_pyfile("missing.py", silent=True) is False
    with pytest.raises(OSError, match="Unable to load configuration file"):
        config.from_pyfile("missing.py")
    assert config.from_file("missing.json", load=json.load, silent=True) is False
    monkeypatch.setenv("SETTINGS_PATH", str(tmp_path / "settings.py"))
    assert config.from_envvar("SETTINGS_PATH")
    monkeypatch.delenv("SETTINGS_PATH")
    with pytest.raises(RuntimeError, match="SETTINGS_PATH"):
        config.from_envvar("SETTINGS_PATH")


def test_from_prefixed_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_SECRET_KEY", "env-secret")
    monkeypatch.setenv("TETHER_MAX_CONTENT_LENGTH", "1024")
    monkeypatch.setenv("TETHER_DEBUG", "true")
    monkeypatch.setenv("TETHER_DB__HOST", "localhost")
    monkeypatch.setenv("OTHER_KEY", "no")
    app = tether.Tether("env_app")
    app.config.from_prefixed_env()
    assert app.config["SECRET_KEY"] == "env-secret" and app.secret_key == "env-secret"
    assert app.config["MAX_CONTENT_LENGTH"] == 1024 and app.config["DEBUG"] is True
    assert app.config["DB"] == {"HOST": "localhost"} and "KEY" not in app.config


def test_from_prefixed_env_reads_flasks_variables_then_tethers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASK_SECRET_KEY", "from flask")
    monkeypatch.setenv("FLASK_ONLY", "1")
    monkeypatch.setenv("FLASK_EXIST__inner__ik", "2")
    monkeypatch.setenv("TETHER_SECRET_KEY", "from tether")
    app = tether.Tether("env_both")
    app.config["EXIST"] = {"ok": "value", "inner": {"ik": 1}}
    app.config.from_prefixed_env()
    assert app.config["SECRET_KEY"] == "from tether" and app.config["ONLY"] == 1
    assert app.config["EXIST"] == {"ok": "value", "inner": {"ik": 2}}
    custom = tether.Tether("env_custom")
    monkeypatch.setenv("MINE_KEY", '"mine"')
    custom.config.from_prefixed_env("MINE")
    assert custom.config["KEY"] == "mine" and "ONLY" not in custom.config


@pytest.mark.parametrize(
    ("environ", "config", "reported"),
    [
        ({"BROADCAST_URL": "redis://r/0"}, {}, ["BROADCAST_URL"]),
        ({"BROADCAST_URL": "redis://r/0"}, {"BROADCAST_URL": "redis://r/0"}, []),  # the app applied it itself
        ({"TETHER_SYNC_THREADS": "8"}, {}, ["TETHER_SYNC_THREADS"]),  # from_prefixed_env() never called
        ({"TETHER_SYNC_THREADS": "8"}, {"SYNC_THREADS": 8}, []),  # read as JSON, as from_prefixed_env does
        ({"FLASK_SSE_SEND_TIMEOUT": "5"}, {}, ["FLASK_SSE_SEND_TIMEOUT"]),
        ({"TETHER_SPAWN_THREADS": "2", "SPAWN_THREADS": "3"}, {"SPAWN_THREADS": 2}, []),  # the prefixed one is the app's
        ({"SECRET_KEY": "x", "DEBUG": "1", "BROADCAST_URL__X": "y"}, {}, []),  # Flask's keys, or not a setting
    ],
)
def test_a_tether_setting_the_environment_sets_but_the_app_does_not_hold_is_warned_about(
    environ: dict[str, str], config: dict[str, object], reported: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    from tether.application.config import DEFAULT_CONFIG, warn_unapplied_environment

    logger = logging.getLogger("test_config.environment")
    with caplog.at_level(logging.WARNING, logger.name):
        assert warn_unapplied_environment({**DEFAULT_CONFIG, **config}, logger, environ) == reported
    assert len(caplog.records) == len(reported)
    for record, name in zip(caplog.records, reported, strict=True):
        assert f"The environment sets {name}," in record.getMessage()
        assert "from_prefixed_env()" in record.getMessage()

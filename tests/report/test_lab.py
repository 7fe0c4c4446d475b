"""`make lab`: starts as root too (--allow-root, still on 127.0.0.1 only) without the Jupyter news pop-up."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
CONFIG_DIR = PROJECT / "jupyter-config"
ANNOUNCEMENTS = "@jupyterlab/apputils-extension:announcements"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def lab_command(tmp_path: Path, uid: int) -> str:
    """What `make lab` would run when `id -u` says ``uid`` (a fake `id` first on PATH; nothing is started)."""
    bin_dir = tmp_path / f"bin{uid}"
    bin_dir.mkdir()
    fake = bin_dir / "id"
    fake.write_text(f"#!/bin/sh\necho {uid}\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    # -o: the prerequisites count as made, so -n prints only the lab command itself
    result = subprocess.run(
        ["make", "-n", "-o", "setup", "-o", ".venv/.lab-installed", "lab"],
        cwd=PROJECT, env=env, capture_output=True, text=True, check=True,
    )
    return result.stdout


@pytest.mark.parametrize("uid, allowed", [(0, True), (1000, False)])
def test_make_lab_allows_root_only_as_root_and_listens_on_localhost(tmp_path, uid, allowed):
    command = lab_command(tmp_path, uid)
    assert "jupyter lab" in command
    assert ("--allow-root" in command) is allowed
    assert "--ip=127.0.0.1" in command and "0.0.0.0" not in command
    assert f"{CONFIG_DIR}" in command and "JUPYTER_CONFIG_PATH" in command
    assert "JUPYTER_PREFER_ENV_PATH=1" in command


def test_shipped_page_config_switches_off_the_news_pop_up():
    config = json.loads((CONFIG_DIR / "labconfig" / "page_config.json").read_text())
    assert config == {"disabledExtensions": {ANNOUNCEMENTS: True}}


def test_jupyter_finds_the_shipped_config_first(monkeypatch):
    """Read as JupyterLab reads it: page_config.json of each labconfig/ folder on the config path."""
    from jupyter_core.paths import jupyter_config_path

    monkeypatch.setenv("JUPYTER_CONFIG_PATH", str(CONFIG_DIR))  # what the Makefile sets
    assert jupyter_config_path()[0] == str(CONFIG_DIR)
    try:
        from jupyterlab_server.config import get_page_config  # installed by `make lab` (the lab extra)
    except ImportError:
        return
    page_config = get_page_config([], str(PROJECT / "no-settings"))
    assert ANNOUNCEMENTS in page_config["disabledExtensions"]

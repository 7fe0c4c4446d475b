"""What the stores' space preflight asks of helpers.core.space: the free bytes where a store will write,
and an error that gives both numbers. (Tests of helpers.core.space; they came with the store fault tests.)"""

from __future__ import annotations

import shutil

import pytest

from helpers.core import space
from helpers.core.errors import InsufficientSpaceError


def test_free_bytes_looks_at_the_nearest_existing_folder(tmp_path, monkeypatch):
    asked = []
    real_disk_usage = shutil.disk_usage

    def disk_usage(path):
        asked.append(path)
        return real_disk_usage(path)

    # Asked of the folder itself (the free count moves while others write: compare where it looks).
    monkeypatch.setattr(space.shutil, "disk_usage", disk_usage)
    assert space.free_bytes(tmp_path / "not" / "yet" / "made") > 0
    assert asked == [tmp_path]
    assert space.existing_parent(tmp_path / "not" / "yet") == tmp_path


def test_check_free_space_message_gives_both_numbers(tmp_path, monkeypatch):
    monkeypatch.setattr(space, "free_bytes", lambda path: 1536)
    space.check_free_space(tmp_path, 1000)
    with pytest.raises(InsufficientSpaceError) as caught:
        space.check_free_space(tmp_path, 3 * 1024**3, what="the experiment")
    message = str(caught.value)
    assert "3.0 GiB (3,221,225,472 bytes)" in message
    assert "1.5 KiB (1,536 bytes)" in message
    assert "the experiment" in message and str(tmp_path) in message
    assert isinstance(caught.value, OSError)

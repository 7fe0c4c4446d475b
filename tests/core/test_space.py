"""The free-space and free-inode preflight (``helpers.core.space``): 100,000 PNG files can run out of inodes
before they run out of bytes."""

from __future__ import annotations

import shutil

import pytest
from space_fixtures import fake_statvfs

from helpers.core import space
from helpers.core.errors import InsufficientSpaceError


def test_free_files_reads_the_inodes_an_unprivileged_process_may_use(tmp_path, monkeypatch):
    fake_statvfs(monkeypatch, files=1000, favail=123)
    assert space.free_files(tmp_path / "not" / "made") == 123


def test_free_files_is_none_where_the_filesystem_does_not_count_inodes(tmp_path, monkeypatch):
    fake_statvfs(monkeypatch, files=0, favail=0)  # btrfs reports 0 total and 0 free
    assert space.free_files(tmp_path) is None
    space.check_free_space(tmp_path, 1, needed_files=10**9)  # no inode limit to enforce


def test_check_free_space_refuses_with_both_inode_numbers(tmp_path, monkeypatch):
    fake_statvfs(monkeypatch, files=1_000_000, favail=50_000)
    space.check_free_space(tmp_path, 1, needed_files=50_000)
    with pytest.raises(InsufficientSpaceError) as caught:
        space.check_free_space(tmp_path, 1, what="the experiment", needed_files=100_003)
    message = str(caught.value)
    assert "100,003 files" in message and "50,000 more" in message and "inodes" in message
    assert "the experiment" in message and str(tmp_path) in message
    assert isinstance(caught.value, OSError)


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

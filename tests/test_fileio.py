"""The small file operations the stores build on."""

from __future__ import annotations

import subprocess

import pytest

from helpers.fileio import spread_subfolders, write_new_file


def test_write_new_file_writes_every_byte(tmp_path):
    data = bytes(range(256)) * 4099  # more than one page, not a multiple of one
    write_new_file(tmp_path / "a.png", data)
    assert (tmp_path / "a.png").read_bytes() == data
    write_new_file(tmp_path / "empty", b"")
    assert (tmp_path / "empty").read_bytes() == b""


def test_write_new_file_never_overwrites(tmp_path):
    (tmp_path / "a.png").write_bytes(b"kept")
    with pytest.raises(FileExistsError):
        write_new_file(tmp_path / "a.png", b"new")
    assert (tmp_path / "a.png").read_bytes() == b"kept"


def test_spread_subfolders_marks_the_folder_where_the_file_system_allows(tmp_path):
    from helpers.environment import mount_of

    folder = tmp_path / "batch"
    folder.mkdir()
    marked = spread_subfolders(folder)
    if mount_of(folder)["type"] in ("ext2", "ext3", "ext4"):
        assert marked
        listing = subprocess.run(["lsattr", "-d", str(folder)], capture_output=True, text=True, check=False)
        if listing.returncode == 0:
            assert "T" in listing.stdout.split()[0]
    (folder / "sub").mkdir()  # the folder works as before
    assert spread_subfolders(tmp_path / "missing") is False
    assert spread_subfolders(tmp_path / "batch" / "sub") is marked

"""The small file operations the stores build on."""

from __future__ import annotations

import os
import subprocess

import pytest

from helpers.core.files import preallocated, spread_subfolders, write_new_file


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
    from helpers.report.environment import mount_of

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


def test_preallocated_file_keeps_what_was_written_and_gives_back_the_rest(tmp_path):
    path = tmp_path / "batch.bin"
    path.write_bytes(b"an older, longer file" * 1000)
    data = bytes(range(256)) * 40  # 10,240 bytes, written in two calls
    with preallocated(path, 8 << 20) as fd:
        os.write(fd, data[:1000])
        os.write(fd, data[1000:])
    assert path.read_bytes() == data
    assert path.stat().st_blocks * 512 < 1 << 20  # the 8 MiB estimate was cut back to what holds the data
    with preallocated(path, 4096):
        pass
    assert path.read_bytes() == b""


def test_preallocated_file_is_left_as_written_when_the_writer_fails(tmp_path):
    path = tmp_path / "batch.bin"
    with pytest.raises(RuntimeError, match="writer failed"):
        with preallocated(path, 1 << 20) as fd:
            os.write(fd, b"half")
            raise RuntimeError("writer failed")
    assert path.exists()  # the caller, which knows the file is partial, removes it

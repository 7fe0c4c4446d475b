import json
import os
import re
import shutil
import subprocess

import h5py
import lmdb
import numpy
import pandas as pd
import pytest

from helpers.report.environment import as_table, capture, git_state, has_journal, load, mount_of, save


@pytest.fixture(scope="module")
def info(tmp_path_factory):
    return capture(tmp_path_factory.mktemp("work") / "not-yet-created", dataset_source="synthetic (test)")


def test_capture_describes_machine_and_software(info):
    assert info["cpu_cores_logical"] >= 1
    assert 1 <= info["cpu_cores_usable"] <= info["cpu_cores_logical"]
    assert info["memory_total_bytes"] > 0
    assert info["cpu_model"] and info["os"] and info["kernel"].startswith(("Linux", "Darwin"))
    assert info["python"].split()[-1].count(".") == 2
    libraries = info["libraries"]
    assert libraries["numpy"] == numpy.__version__
    assert libraries["h5py"] == h5py.__version__
    assert libraries["LMDB C library"] == ".".join(map(str, lmdb.version()))
    assert libraries["HDF5 C library"] == h5py.version.hdf5_version
    for name in ("Pillow", "lmdb", "pandas", "matplotlib"):
        assert re.match(r"\d+\.\d+", libraries[name]), name
    assert info["dataset_source"] == "synthetic (test)"
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$", info["timestamp"])


def test_capture_finds_the_work_folder_file_system(info):
    assert info["work_dir"].endswith("not-yet-created")
    assert info["work_dir_free_bytes"] > 0
    if shutil.which("df"):
        out = subprocess.run(["df", "--output=fstype", info["work_dir"]], capture_output=True, text=True)
        if out.returncode == 0:
            assert info["filesystem_type"] == out.stdout.split()[-1]
    assert isinstance(info["cold_cache_possible"], bool)


def test_capture_records_the_project_commit(info):
    assert re.fullmatch(r"[0-9a-f]{40}", info["git_commit"]) or info["git_commit"] == "unknown"
    assert info["git_dirty"] in (True, False, None)


def test_capture_is_json_ready(info):
    assert json.loads(json.dumps(info)) == info


def test_git_state_outside_a_checkout(tmp_path):
    if subprocess.run(["git", "-C", str(tmp_path), "rev-parse"], capture_output=True).returncode == 0:
        pytest.skip("the temporary folder is inside a git checkout")
    assert git_state(tmp_path) == ("unknown", None)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_state_of_a_checkout_clean_and_dirty(tmp_path):
    def git(*args):
        return subprocess.run(
            ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
            capture_output=True, text=True, check=True,
        ).stdout.strip()

    git("init", "-q")
    (tmp_path / "a.txt").write_text("one")
    git("add", "a.txt")
    git("commit", "-q", "-m", "first")
    assert git_state(tmp_path) == (git("rev-parse", "HEAD"), False)
    (tmp_path / "a.txt").write_text("two")
    assert git_state(tmp_path) == (git("rev-parse", "HEAD"), True)


def test_mount_of_picks_the_longest_mount_point_above_the_path(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "/dev/root / ext4 rw 0 0\n"
        "tmpfs /data tmpfs rw 0 0\n"
        "/dev/sdb1 /data2 xfs rw 0 0\n"
        "/dev/sdc1 /data/my\\040disk btrfs rw,noatime 0 0\n"
        "broken-line\n"
    )
    assert mount_of("/data2/x", mounts)["type"] == "xfs"  # not /data: a prefix of the name, not of the path
    assert mount_of("/data/other", mounts) == {
        "device": "tmpfs", "mount_point": "/data", "type": "tmpfs", "options": "rw"
    }
    assert mount_of("/data/my disk/work", mounts)["mount_point"] == "/data/my disk"
    assert mount_of("/data/my disk/work", mounts)["options"] == "rw,noatime"
    assert mount_of("/home/me", mounts)["type"] == "ext4"
    assert mount_of("/x", tmp_path / "no-such-file")["type"] == "unknown"


def test_mount_of_takes_the_last_of_stacked_mounts(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/a /mnt ext4 rw 0 0\n/dev/b /mnt xfs rw 0 0\n")
    assert mount_of("/mnt/x", mounts)["device"] == "/dev/b"


def fake_kernel(tmp_path, path, journaled: bool):
    """A /sys and /proc in which the block device of ``path`` is "vdz", with a journal or without."""
    device = os.stat(path).st_dev
    block = tmp_path / "sys" / "dev" / "block"
    block.mkdir(parents=True)
    (block / f"{os.major(device)}:{os.minor(device)}").symlink_to("../../devices/virtual/block/vdz")
    jbd2 = tmp_path / "proc" / "fs" / "jbd2"
    jbd2.mkdir(parents=True)
    (jbd2 / "other-8").mkdir()
    if journaled:
        (jbd2 / "vdz-8").mkdir()
    return tmp_path / "sys", tmp_path / "proc"


@pytest.mark.parametrize("journaled", [True, False])
def test_has_journal_looks_for_the_jbd2_entry_of_the_block_device(tmp_path, journaled):
    sysfs, procfs = fake_kernel(tmp_path, tmp_path, journaled)
    assert has_journal(tmp_path, "ext4", sysfs, procfs) is journaled
    assert has_journal(tmp_path, "xfs", sysfs, procfs) is None  # other file systems: not asked
    assert has_journal(tmp_path, "ext4", tmp_path / "no-sys", procfs) is None  # Linux did not say


def test_has_journal_of_this_machine_agrees_with_capture(info):
    assert info["filesystem_journal"] in (True, False, None)
    if info["filesystem_type"] not in ("ext3", "ext4"):
        assert info["filesystem_journal"] is None
    assert info["filesystem_options"] != ""


def test_save_and_load_round_trip(tmp_path, info):
    path = save(info, tmp_path / "results")
    assert path == tmp_path / "results" / "environment.json"
    assert load(tmp_path / "results") == info
    assert [p.name for p in path.parent.iterdir()] == ["environment.json"]  # no temporary file left


def test_load_names_the_notebook_that_records_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="00-setup"):
        load(tmp_path)


def test_as_table_has_two_text_columns(info):
    table = as_table(info)
    assert list(table.columns) == ["item", "value"]
    assert all(isinstance(v, str) for v in table["value"])
    values = dict(zip(table["item"], table["value"]))
    assert values["LMDB C library"] == info["libraries"]["LMDB C library"]
    assert values["Dataset"] == "synthetic (test)"
    assert values["Memory"].endswith("iB")
    assert len(table) == len(set(table["item"]))


def test_as_table_shows_unknown_items_and_formats_values():
    table = as_table({"memory_total_bytes": 3 * 1024**3, "git_dirty": None, "cold_cache_possible": True,
                      "extra_thing": 5})
    assert table.to_dict("list") == {
        "item": [
            "Memory", "Cold reads possible (page cache eviction verified)", "Uncommitted changes",
            "extra_thing",
        ],
        "value": ["3.0 GiB", "yes", "unknown", "5"],
    }
    assert isinstance(table, pd.DataFrame)

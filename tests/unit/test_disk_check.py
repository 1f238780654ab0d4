"""`up` refuses to start on a nearly full disk, naming the folder that is short."""

from __future__ import annotations

from pathlib import Path

from local_stack.cli import MIN_FREE_DISK_BYTES, disk_shortage, free_disk
from local_stack.settings import Settings

GB = 1024**3


def test_enough_disk_everywhere_is_no_shortage():
    assert disk_shortage({"/state": 50 * GB, "temporary files": MIN_FREE_DISK_BYTES}) is None


def test_a_short_folder_is_named_with_its_free_space_and_the_others_are_not():
    message = disk_shortage({"/state": int(0.3 * GB), "temporary files": 40 * GB})
    assert message is not None
    assert "0.3 GB free for /state" in message
    assert "temporary files" not in message
    assert "USERSTREAM_STATE_DIR" in message


def test_free_disk_reads_the_state_folder_and_the_temp_folder(tmp_path: Path):
    free = free_disk(Settings(state_dir=tmp_path))
    assert set(free) == {str(tmp_path), "temporary files"}
    assert all(isinstance(v, int) and v > 0 for v in free.values())

"""Atomic writes: a reader sees the old file or the whole new one, never half, and no leftovers."""
import os
import stat

import pytest

from nanotst.files import atomic_write


def test_writes_the_whole_file_readable_by_others(tmp_path):
    path = atomic_write(tmp_path / "sub" / "out.csv", lambda f: f.write("a,b\n1,2\n"), binary=False)
    assert path.read_text() == "a,b\n1,2\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert os.listdir(tmp_path / "sub") == ["out.csv"]


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_behind(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"old")

    def half_then_fail(f):
        f.write(b"new but not fini")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, half_then_fail)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.pt"]


def test_the_training_report_is_written_whole_and_readable_by_others(tmp_path):
    from nanotst.report import write_report
    out = write_report(tmp_path / "r.html", [], [], title="empty run")
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o644
    assert os.listdir(tmp_path) == ["r.html"]

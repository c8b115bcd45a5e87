"""The one atomic-write helper: whole new content or the old file, never a stray temporary."""

from __future__ import annotations

import pytest

from liqlab.core.atomic import TMP_PREFIX, atomic_write, atomic_write_bytes, atomic_write_text, remove_stale_temps


def test_atomic_write_replaces_the_content(tmp_path):
    path = tmp_path / "sub" / "f.bin"
    assert atomic_write_bytes(path, b"one") == path and path.read_bytes() == b"one"
    atomic_write_text(path, "två")
    assert path.read_text(encoding="utf-8") == "två"
    assert [p.name for p in path.parent.iterdir()] == ["f.bin"]


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"old")

    def half_then_fail(fh):
        fh.write(b"new, but only ha")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, half_then_fail)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_remove_stale_temps_deletes_only_this_files_temporaries(tmp_path):
    path = tmp_path / "f.parquet"
    (tmp_path / f"{TMP_PREFIX}f.parquet.abc").write_bytes(b"x")
    (tmp_path / f"{TMP_PREFIX}g.parquet.abc").write_bytes(b"x")
    assert remove_stale_temps(path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{TMP_PREFIX}g.parquet.abc"]

"""Writing a file so that nobody ever sees half of it: checkpoints, reports, forecast CSVs."""
from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Callable, IO


def atomic_write(path, write: Callable[[IO], None], *, binary: bool = True,
                 exclusive: bool = False) -> Path:
    """Call write(f) on a temporary file in path's folder, then rename it to path.

    If anything fails the temporary file is removed and an existing file at path is untouched;
    the error propagates. The folder is created if needed. exclusive: never replace an existing
    file (FileExistsError), decided atomically by the file system, so two writers racing for
    one name cannot both win.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)   # mkstemp makes 0600; these files are meant to be shared
        if exclusive:
            os.link(tmp, path)     # fails if path exists; then drop the temporary name
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


STALE_TEMP_SECONDS = 3600


def remove_stale_temps(folder, max_age: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Delete atomic_write's temporary files in folder that are older than max_age seconds:
    the leftovers of writes that were killed (a live write's file is seconds old)."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    now = time.time()
    for tmp in folder.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            if tmp.is_file() and now - tmp.stat().st_mtime > max_age:
                tmp.unlink()
                removed.append(tmp)
    return removed

"""Atomic file writes: a temporary file in the same folder, fsync, then ``os.replace``.

A crash or a kill in the middle of a save leaves either the old file or the
new one, never a truncated or empty file. What a kill can leave behind is the
hidden temporary file ``.NAME.XXXXXXXX.tmp``; ``remove_stale_temp_files`` clears
those (the app calls it at start-up for its own folders and for every folder
whose cases it lists). A read-only file is never replaced (``PermissionError``):
``os.replace`` would do it silently, since only the folder's permissions count.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable

#: name of the temporary file of ``atomic_write_with`` (``tempfile.mkstemp``'s 8 random characters)
_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp$")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    atomic_write_with(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    atomic_write_bytes(path, text.encode(encoding))


def atomic_write_with(path: str | os.PathLike, writer: Callable) -> None:
    """Call ``writer(binary_file)`` on a temporary file, then move it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_read_only(path):
        raise PermissionError(errno.EACCES, "the file is read-only", str(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _target_mode(path))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _target_mode(path: Path) -> int:
    """Keep an existing file's permissions; a new file gets the usual 0666 & ~umask
    (mkstemp's private 0600 would hide saved work from the user's other tools)."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def is_read_only(path: str | os.PathLike) -> bool:
    """True when ``path`` is an existing file nobody may write (no write bit set), or that
    this user may not write. (Root passes ``os.access``; the mode bits still count.)"""
    try:
        st = os.stat(path)
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode):
        return False
    return (st.st_mode & 0o222) == 0 or not os.access(path, os.W_OK)


def remove_stale_temp_files(folders: Iterable[str | os.PathLike], suffixes: tuple[str, ...] | None = None,
                            min_age_s: float = 300.0) -> list[Path]:
    """Delete the temporary files ``atomic_write_with`` leaves when it is killed mid-write.

    Only hidden files named exactly like ours (``.NAME.XXXXXXXX.tmp``), whose target
    ``NAME`` ends with one of ``suffixes`` (None: any), and which nobody touched for
    ``min_age_s`` seconds (a save in progress in another DentSeg takes milliseconds).
    Folders that do not exist or cannot be listed are skipped. Returns what was removed.
    """
    removed: list[Path] = []
    now = time.time()
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            m = _TEMP_NAME.match(e.name)
            if m is None or (suffixes is not None and not m.group("target").endswith(suffixes)):
                continue
            try:
                if not e.is_file(follow_symlinks=False) or now - e.stat().st_mtime < min_age_s:
                    continue
                os.unlink(e.path)
            except OSError:
                continue
            removed.append(Path(e.path))
    return removed

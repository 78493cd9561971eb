"""Has a file changed on disk since we read it? (Qt-free)

``FileIdentity`` is what DentSeg remembers of an annotation file when it opens it: whether
it existed, its size, modification time and the SHA-256 of its bytes. Before a save
overwrites the file, and when an autosave is offered after a crash, the file's current
identity is compared with the remembered one (``changed_since``): another DentSeg, a
sync client or git may have written it in between.

The content hash decides: a file that was only touched (same bytes, new time) has not
changed; a file rewritten with other bytes has, even when the size and the time (on a
file system with coarse timestamps) happen to match.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

#: files larger than this are identified by size + time only (annotation files are < 16 MiB)
_HASH_LIMIT = 256 * 1024 * 1024


@dataclass(frozen=True)
class FileIdentity:
    exists: bool
    size: int = 0
    mtime_ns: int = 0
    sha256: str = ""

    @classmethod
    def missing(cls) -> "FileIdentity":
        return cls(False)

    @classmethod
    def of_bytes(cls, data: bytes, st: os.stat_result) -> "FileIdentity":
        """The identity of bytes just read from a file whose ``os.stat`` is ``st``."""
        return cls(True, len(data), int(st.st_mtime_ns), hashlib.sha256(data).hexdigest())

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: Any) -> "FileIdentity | None":
        """From ``as_json``; None when ``d`` is not one (an old or damaged record)."""
        if not isinstance(d, dict) or not isinstance(d.get("exists"), bool):
            return None
        try:
            return cls(d["exists"], int(d.get("size", 0)), int(d.get("mtime_ns", 0)), str(d.get("sha256", "")))
        except (TypeError, ValueError, OverflowError):
            return None

    def describe(self) -> str:
        if not self.exists:
            return "no file"
        when = datetime.fromtimestamp(self.mtime_ns / 1e9).strftime("%Y-%m-%d %H:%M:%S")
        return f"{self.size} bytes, modified {when}"


def identity_of(path: str | os.PathLike) -> FileIdentity:
    """The current identity of ``path`` (``exists=False`` when it is not there or unreadable)."""
    p = Path(path)
    try:
        st = p.stat()
        if st.st_size > _HASH_LIMIT:
            return FileIdentity(True, int(st.st_size), int(st.st_mtime_ns), "")
        with open(p, "rb") as f:
            data = f.read()
    except OSError:
        return FileIdentity.missing()
    return FileIdentity.of_bytes(data, st)


def read_with_identity(path: str | os.PathLike, limit: int | None = None) -> tuple[bytes, FileIdentity]:
    """The bytes of ``path`` and the identity of exactly those bytes (one read, no race).

    ``limit``: read at most this many bytes + 1 (the caller refuses longer files).
    Raises ``OSError`` like ``open``.
    """
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        data = f.read() if limit is None else f.read(limit + 1)
    return data, FileIdentity.of_bytes(data, st)


def changed_since(before: FileIdentity | None, path: str | os.PathLike) -> str | None:
    """How ``path`` differs from ``before`` (a sentence), or None when it has not changed.

    ``before`` None means "not known": nothing can be said, None is returned.
    """
    if before is None:
        return None
    now = identity_of(path)
    name = Path(path).name
    if before.exists and not now.exists:
        return f"{name} was deleted or moved after it was opened"
    if not before.exists and now.exists:
        return f"{name} was created by another program after this case was opened ({now.describe()})"
    if not now.exists:
        return None
    if before.sha256 and now.sha256:
        if before.sha256 == now.sha256:
            return None
    elif (before.size, before.mtime_ns) == (now.size, now.mtime_ns):
        return None
    return (f"{name} was changed by another program after it was opened "
            f"(then {before.describe()}; now {now.describe()})")


__all__ = ["FileIdentity", "changed_since", "identity_of", "read_with_identity"]

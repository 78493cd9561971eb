"""What a command may replace: never a person's work, never a read-only file (Qt-free).

``dentseg predict --out DIR`` writes ``DIR/<stem>.dentseg.json``. When that file is there
already it is replaced only when nothing but model output would be lost
(``provenance.hand_work``); a file with hand edits, without model provenance, or that is
not a readable annotation at all is refused unless ``--overwrite`` is given; a read-only
file is refused always. One line per refusal, naming the file and what to do.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from .annotation import load_annotation
from .atomic import is_read_only
from .errors import AnnotationError, DentsegError
from .provenance import hand_work


class OverwriteRefused(DentsegError):
    """An output file holds work that must not be replaced (or is read-only)."""


def overwrite_problem(path: str | os.PathLike, overwrite: bool = False) -> str | None:
    """Why the file at ``path`` must not be replaced by a prediction, or None."""
    p = Path(path)
    if not p.exists():
        return None
    if p.is_dir():
        return f"{p} is a folder, not an annotation file; remove or rename it"
    if is_read_only(p):
        return (f"{p} is read-only, so it was not replaced; make it writable to replace it, "
                "or choose another --out folder")
    if overwrite:
        return None
    try:
        ann = load_annotation(p)
    except AnnotationError as exc:
        return (f"{p} exists and is not a readable DentSeg annotation ({exc}), so it was not "
                "replaced; pass --overwrite to replace it, or choose another --out folder")
    why = hand_work(ann)
    if why is None:
        return None
    return (f"{p} holds work that is not unedited model output ({why}), so it was not replaced; "
            "pass --overwrite to replace it, or choose another --out folder")


def check_outputs(paths: Sequence[str | os.PathLike], overwrite: bool = False) -> None:
    """Raise ``OverwriteRefused`` (one line: the first file, and how many more) when any of
    ``paths`` must not be replaced; checked before any work starts."""
    problems = [m for m in (overwrite_problem(p, overwrite) for p in paths) if m]
    if problems:
        more = f" (and {len(problems) - 1} more file{'s' if len(problems) > 2 else ''} like it)" \
            if len(problems) > 1 else ""
        raise OverwriteRefused(problems[0] + more)


__all__ = ["OverwriteRefused", "check_outputs", "overwrite_problem"]

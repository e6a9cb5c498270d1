"""One base class for every error the app reports to a user, and one way to say an exception in one line.

Every error the app raises on purpose (a bad photo, video, zoo, detector file, provider, camera, command
line) derives from :class:`EmotionLensError`, so a caller of the Python API can catch all of them at once
and tell them from bugs. Each keeps its older base too (most are ``ValueError``s), so code written against
those still works.
"""

from __future__ import annotations


class EmotionLensError(Exception):
    """Something the user can fix: the message is one line naming the file or option at fault."""


def one_line(e: BaseException | str, limit: int | None = 200, strerror: bool = False) -> str:
    """``e``'s message on one line (whitespace runs collapsed), its class name when it has none, cut to
    ``limit`` characters: what a batch log, summary.json or a status bar can hold. ``strerror`` prefers an
    OSError's bare reason ("No such file or directory") to its ``[Errno 2] ...: 'path'`` form, for messages
    that name the file themselves."""
    text = (getattr(e, "strerror", None) if strerror else None) or str(e)
    text = " ".join(str(text).split()) or (type(e).__name__ if isinstance(e, BaseException) else "")
    return text if limit is None else text[:limit]

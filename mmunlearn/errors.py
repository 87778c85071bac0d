"""What kind of failure an exception is: the user's to fix, the machine's, or a bug.

mmunlearn checks user input (data, configuration, paths, files) with explicit `raise
ValueError/KeyError/TypeError(...)` statements that name the file, row, field, setting or value
and what is allowed (STYLE.md). `UserError` marks the checks that cannot be such a statement in
mmunlearn's own code (a library's error re-worded, a failure of training a user's setting
caused); `error_kind` tells the three kinds apart for the command line, which prints a user
error or an OS error as one line and a bug with its traceback.
"""

from __future__ import annotations

import errno
import traceback
from pathlib import Path

PACKAGE = str(Path(__file__).parent)

# An OSError about a path the user gave (it does not exist, is a folder, ...) is theirs to fix;
# the others (permissions, a full disk, a read-only file system) are the machine's.
PATH_ERRNOS = frozenset(
    {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG, errno.ELOOP}
)
CHECK_TYPES = (ValueError, KeyError, TypeError)


class UserError(Exception):
    """Input the user can fix; the message says what was wrong and what is allowed."""


class UserValueError(UserError, ValueError):
    pass


class UserKeyError(UserError, KeyError):
    def __str__(self) -> str:  # a KeyError's str() would quote the message
        return str(self.args[0]) if self.args else ""


def error_kind(error: BaseException) -> str:
    """ "user", "os" or "bug".

    A user error is a `UserError`, an OSError about a path (or one without an errno, which
    libraries raise for a folder they cannot load from), or a ValueError/KeyError/TypeError
    raised by a `raise` statement in mmunlearn's own code (its input checks). The same types
    raised anywhere else, say a KeyError of a dict lookup inside mmunlearn or a ValueError deep
    in a library, are bugs: their message would not tell a user what to change.
    """
    if isinstance(error, UserError):
        return "user"
    if isinstance(error, OSError):
        # no errno: a "cannot load this path" message of ours or a library's (transformers)
        return "user" if error.errno is None or error.errno in PATH_ERRNOS else "os"
    if isinstance(error, CHECK_TYPES) and raised_by_check(error):
        return "user"
    return "bug"


def raised_by_check(error: BaseException) -> bool:
    """Whether the innermost frame of `error` is a `raise` statement in mmunlearn's code."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames or not frames[-1].filename.startswith(PACKAGE):
        return False
    return (frames[-1].line or "").lstrip().startswith("raise ")


def one_line(error: BaseException) -> str:
    """The message of `error` (a KeyError's without the quotes str() adds; an OSError's as
    `path: reason`)."""
    message = error.args[0] if isinstance(error, KeyError) and error.args else error
    if isinstance(error, OSError) and error.errno is not None and error.filename:
        return f"{error.filename}: {error.strerror}"
    return str(message)

"""Opening state files so that no special file can block or flood the reader.

Every file exo trusts is opened through here: non-blocking (a FIFO planted where a state file
should be would otherwise hang every hook that reads it), then checked to be a regular file, and
read with a size bound. Failures are `OSError`s, so callers that already treat an unreadable file
as damaged (fail closed) need nothing new; a missing file is still `FileNotFoundError`, and a file
that is there but is not one exo could have written (a FIFO, a directory, a symbolic link where
links are refused, a file past the bound) is `NotRegular`, so callers can name it damaged rather
than the disk failing.
"""

from __future__ import annotations

import errno
import os
import stat

MAX_BYTES = 256 * 1024 * 1024  # far above any state file; a bound, not a budget
_FLAGS = os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_WRONG_KIND = {errno.EISDIR, errno.ENXIO, errno.ELOOP}  # a directory, a socket, a refused link


class NotRegular(OSError):
    """Something other than a regular file of bounded size is where a file should be."""


def open_regular(
    path: str | os.PathLike[str], flags: int = os.O_RDONLY, mode: int = 0o644, *, follow: bool = True
) -> int:
    """`os.open` that refuses anything but a regular file (FIFO, socket, device, directory) and,
    with `follow=False`, a symbolic link too (exo never makes one among its own files)."""
    try:
        fd = os.open(path, flags | _FLAGS | (0 if follow else _NOFOLLOW), mode)
    except OSError as exc:
        if exc.errno not in _WRONG_KIND:
            raise
        what = "a symbolic link" if exc.errno == errno.ELOOP else "not a regular file"
        raise NotRegular(exc.errno, what, os.fspath(path)) from None
    try:
        kind = os.fstat(fd).st_mode
        if not stat.S_ISREG(kind):
            raise NotRegular(errno.EINVAL, f"not a regular file ({_kind(kind)})", os.fspath(path))
        os.set_blocking(fd, True)
        return fd
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike[str], limit: int = MAX_BYTES, *, follow: bool = True) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. Raises FileNotFoundError, NotRegular
    or OSError."""
    fd = open_regular(path, follow=follow)
    try:
        chunks, size = [], 0
        while chunk := os.read(fd, 1 << 20):
            size += len(chunk)
            if size > limit:
                raise NotRegular(errno.EFBIG, f"larger than {limit} bytes", os.fspath(path))
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISDIR, "a directory"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"

"""
Saved files streamed from their ``ObjectStoragePath`` with HTTP ``Range`` support, so a player can seek.

One ``bytes=`` range is honoured (``206`` with ``Content-Range``); a range that starts past the end gets ``416``
with ``Content-Range: bytes */<size>``; several ranges, or a header in another unit, are answered with the whole
file (``200``), as RFC 9110 allows.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from airflow_provider_mjvideo.storage.destination import fs_path

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import ObjectStoragePath

#: Bytes read from storage and sent at a time.
CHUNK_SIZE: Final = 256 * 1024
_RANGE: Final = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
_MEDIA_TYPES: Final = ("video/", "image/")


class RangeNotSatisfiable(Exception):
    """The requested range lies outside the file (``416``)."""


@dataclass(frozen=True)
class ByteRange:
    """The inclusive byte range ``start``-``end`` of a file of ``size`` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """
    The one range a ``Range`` header asks for, or ``None`` for the whole file.

    :param header: the request's ``Range`` header, if any.
    :param size: the file's size in bytes.
    :raises RangeNotSatisfiable: a single ``bytes=`` range with no byte inside the file (or an empty file).
    """
    if not header or "," in header:
        return None
    match = _RANGE.match(header)
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # bytes=-N: the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(header)
        return ByteRange(max(size - suffix, 0), size - 1, size)
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise RangeNotSatisfiable(header)
    return ByteRange(start, end, size)


def media_type(content_type: str, file_name: str) -> str:
    """
    The ``Content-Type`` to send: the manifest's when it names a video or picture, else the file name's guess.

    :param content_type: what the manifest recorded.
    :param file_name: the file's name.
    """
    recorded = content_type.split(";", 1)[0].strip().lower()
    if recorded.startswith(_MEDIA_TYPES):
        return recorded
    guessed = mimetypes.guess_type(file_name)[0] or ""
    return guessed if guessed.startswith(_MEDIA_TYPES) else "application/octet-stream"


def file_size(path: ObjectStoragePath) -> int:
    """
    The stored file's size in bytes.

    :param path: the file.
    :raises FileNotFoundError: it is gone.
    """
    return int(path.fs.size(fs_path(path)))


def read_chunks(path: ObjectStoragePath, start: int, length: int, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """
    ``length`` bytes of the stored file from ``start``, in chunks (never the whole file in memory).

    :param path: the file.
    :param start: the first byte.
    :param length: how many bytes.
    :param chunk_size: bytes read at a time.
    """
    with path.fs.open(fs_path(path), "rb") as handle:
        handle.seek(start)
        left = length
        while left > 0:
            chunk = handle.read(min(chunk_size, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk

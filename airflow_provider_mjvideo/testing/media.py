"""Video and image bytes served by the emulator's fake CDN.

Four tiny but real H.264 MP4 clips (160x90, 1.5 s, a white block sliding over a solid colour) ship as
package data in ``clips/``, each with a matching JPEG thumbnail. :func:`streamed_clip` builds a clip of
any size on the fly: a playable clip followed by one MP4 ``free`` box of filler, produced in chunks so
that multi-hundred-megabyte downloads never sit in memory.

Images of the imagine pipeline are real PNGs made here with the standard library (a few hundred bytes
each, so nothing ships): :func:`image_png` is one solid-colour picture, :func:`grid_png` the 2x2 grid of
four of them, in Midjourney's order (U1 top left, U2 top right, U3 bottom left, U4 bottom right).
"""

from __future__ import annotations

import functools
import struct
import zlib
from collections.abc import Iterator, Sequence
from importlib import resources

CLIP_COUNT = 4
"""Number of distinct clips shipped; clip ``i`` of any task is ``clip_bytes(i % CLIP_COUNT)``."""

_PATTERN_PERIOD = 256

PALETTE = ((0xE0, 0x4F, 0x3A), (0x3A, 0x8F, 0xE0), (0x4C, 0xB8, 0x5C), (0xF0, 0xC0, 0x30))
"""RGB colour of image ``i``; :func:`image_png` and :func:`grid_png` index it."""
IMAGE_SIZE = 64
"""Width and height in pixels of one image (:func:`image_png`)."""
GRID_SIZE = 2 * IMAGE_SIZE
"""Width and height in pixels of a 2x2 grid (:func:`grid_png`)."""


def _check_index(index: int) -> int:
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < CLIP_COUNT:
        raise IndexError(f"clip index must be an int in 0..{CLIP_COUNT - 1}, got {index!r}")
    return index


def _read_packaged(name: str) -> bytes:
    return resources.files(__package__).joinpath("clips").joinpath(name).read_bytes()


@functools.cache
def clip_bytes(index: int) -> bytes:
    """Return the bytes of packaged MP4 clip ``index`` (0..3).

    Args:
        index: Which clip; each has its own background colour.

    Returns:
        A complete, playable MP4 file (``ftyp`` box first, ``moov`` before ``mdat``).

    Raises:
        IndexError: ``index`` is not in 0..3.
    """
    return _read_packaged(f"clip{_check_index(index)}.mp4")


@functools.cache
def thumbnail_bytes(index: int) -> bytes:
    """Return the JPEG thumbnail (160x90, the clip's background colour) of clip ``index`` (0..3)."""
    return _read_packaged(f"clip{_check_index(index)}.jpg")


def _streamed_prefix(size: int, index: int) -> bytes:
    """Return the fixed head of a streamed clip: the real clip plus the ``free`` box header."""
    head = clip_bytes(index)
    remaining = size - len(head)
    if remaining < 8:
        # Too small to hold the filler box: a (possibly truncated) clip padded with zeros.
        return (head + bytes(8))[:size]
    if remaining < 1 << 32:
        return head + struct.pack(">I4s", remaining, b"free")
    return head + struct.pack(">I4sQ", 1, b"free", remaining)


@functools.cache
def _pattern(chunk: int) -> bytes:
    return bytes(range(_PATTERN_PERIOD)) * (chunk // _PATTERN_PERIOD + 2)


def streamed_size_prefix(size: int, index: int = 0) -> int:
    """Return how many leading bytes of a streamed clip of ``size`` bytes are not filler."""
    return len(_streamed_prefix(size, index))


def streamed_clip(
    size: int, chunk: int = 1 << 20, *, start: int = 0, stop: int | None = None, index: int = 0
) -> Iterator[bytes]:
    """Yield a deterministic MP4 of exactly ``size`` bytes, or its byte range ``[start, stop)``.

    The file is packaged clip ``index`` followed by a single ``free`` box whose payload is the byte
    pattern ``offset & 0xFF`` (``offset`` counted from the start of the file), so any range can be
    produced, and checked, independently.

    Args:
        size: Total file size in bytes.
        chunk: Largest piece yielded, in bytes.
        start: First byte offset to produce.
        stop: One past the last byte offset to produce (default ``size``).
        index: Which packaged clip forms the playable head.

    Yields:
        Consecutive pieces of at most ``chunk`` bytes whose concatenation is the requested range.

    Raises:
        ValueError: ``size``/``chunk`` negative or zero chunk, or the range does not fit in the file.
    """
    if size < 0 or chunk <= 0:
        raise ValueError("size must be >= 0 and chunk > 0")
    stop = size if stop is None else stop
    if not 0 <= start <= stop <= size:
        raise ValueError(f"invalid range [{start}, {stop}) for a file of {size} bytes")
    prefix = _streamed_prefix(size, index)
    pos = start
    while pos < stop and pos < len(prefix):
        end = min(stop, len(prefix), pos + chunk)
        yield prefix[pos:end]
        pos = end
    pattern = _pattern(chunk)
    while pos < stop:
        n = min(chunk, stop - pos)
        off = pos % _PATTERN_PERIOD
        yield pattern[off : off + n]
        pos += n


def expected_filler(offset: int, length: int) -> bytes:
    """Return the filler bytes a streamed clip holds at ``[offset, offset + length)`` (for checks)."""
    return bytes((offset + i) & 0xFF for i in range(length))


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def _png(width: int, rows: Sequence[bytes]) -> bytes:
    """Return an 8-bit RGB PNG of ``rows`` (``width * 3`` bytes each, filter type 0 on every row)."""
    header = struct.pack(">IIBBBBB", width, len(rows), 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + row for row in rows), 9)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", pixels) + _png_chunk(b"IEND", b"")


def _colour(index: int) -> bytes:
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(PALETTE):
        raise IndexError(f"colour index must be an int in 0..{len(PALETTE) - 1}, got {index!r}")
    return bytes(PALETTE[index])


@functools.cache
def image_png(index: int) -> bytes:
    """Return a :data:`IMAGE_SIZE`-pixel square PNG of solid colour ``PALETTE[index]``.

    Args:
        index: Which colour (0..3).

    Returns:
        A complete PNG file.

    Raises:
        IndexError: ``index`` is not in 0..3.
    """
    return _png(IMAGE_SIZE, [_colour(index) * IMAGE_SIZE] * IMAGE_SIZE)


@functools.cache
def grid_png(colours: tuple[int, int, int, int] = (0, 1, 2, 3)) -> bytes:
    """Return a :data:`GRID_SIZE`-pixel square PNG of four quadrants coloured ``PALETTE[colours[i]]``.

    Args:
        colours: Colour index of quadrant 1 (top left), 2 (top right), 3 (bottom left), 4 (bottom right).

    Returns:
        A complete PNG file.

    Raises:
        IndexError: A colour index is not in 0..3.
    """
    top = _colour(colours[0]) * IMAGE_SIZE + _colour(colours[1]) * IMAGE_SIZE
    bottom = _colour(colours[2]) * IMAGE_SIZE + _colour(colours[3]) * IMAGE_SIZE
    return _png(GRID_SIZE, [top] * IMAGE_SIZE + [bottom] * IMAGE_SIZE)

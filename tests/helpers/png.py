"""A minimal PNG reader for checks on downloaded images: 8-bit RGB, non-interlaced, any row filter."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Png:
    """A decoded image: size and one ``width * 3`` byte string of RGB per row."""

    width: int
    height: int
    rows: list[bytes]

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        """Return the RGB colour at column ``x``, row ``y``."""
        r, g, b = self.rows[y][3 * x : 3 * x + 3]
        return r, g, b


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def read_png(data: bytes) -> Png:
    """Decode ``data``; raise AssertionError when it is not a well-formed 8-bit RGB PNG (CRCs checked)."""
    assert data[:8] == SIGNATURE, data[:8]
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(tag + body) & 0xFFFFFFFF == crc, f"bad CRC in {tag!r}"
        chunks.append((tag, body))
        pos += 12 + length
    assert (chunks[0][0], chunks[-1][0]) == (b"IHDR", b"IEND"), [tag for tag, _ in chunks]
    width, height, depth, colour, _compression, _filter, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour, interlace) == (8, 2, 0), "only 8-bit RGB, non-interlaced"
    raw = zlib.decompress(b"".join(body for tag, body in chunks if tag == b"IDAT"))
    stride = 3 * width
    assert len(raw) == height * (stride + 1)
    rows: list[bytes] = []
    previous = bytes(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - 3] if i >= 3 else 0
            up = previous[i]
            corner = previous[i - 3] if i >= 3 else 0
            predictor = (0, left, up, (left + up) // 2, _paeth(left, up, corner))[kind]
            line[i] = (line[i] + predictor) & 0xFF
        previous = bytes(line)
        rows.append(previous)
    return Png(width, height, rows)

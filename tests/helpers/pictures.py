"""Real pictures of every type the API takes (PNG, JPEG, WebP, GIF), made here or taken from the emulator's media."""

from __future__ import annotations

import struct

from airflow_provider_mjvideo.testing import media

#: A 1x1 lossless WebP bitstream (a VP8L image: the one browsers decode for WebP feature detection).
_VP8L_1X1 = bytes.fromhex("2f00000010071011118888fe07")


def gif_bytes(rgb: tuple[int, int, int] = media.PALETTE[0]) -> bytes:
    """A 1x1 GIF89a of colour ``rgb``: a two-colour global table and one LZW-coded pixel (clear, 0, end)."""
    screen = struct.pack("<HHBBB", 1, 1, 0x80, 0, 0)  # global colour table of 2 entries
    table = bytes(rgb) + b"\x00\x00\x00"
    image = b"," + struct.pack("<HHHHB", 0, 0, 1, 1, 0)
    pixels = b"\x02" + b"\x02\x44\x01" + b"\x00"  # minimum code size 2; one sub-block of 2 bytes; terminator
    return b"GIF89a" + screen + table + image + pixels + b";"


def webp_bytes() -> bytes:
    """A 1x1 lossless WebP: the RIFF container around :data:`_VP8L_1X1` (chunks are padded to an even size)."""
    chunk = b"VP8L" + struct.pack("<I", len(_VP8L_1X1)) + _VP8L_1X1 + b"\x00" * (len(_VP8L_1X1) % 2)
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


#: One real picture per type, as :func:`airflow_provider_mjvideo.media_types.sniff_image` names them.
PICTURES: dict[str, bytes] = {
    "png": media.image_png(2),
    "jpeg": media.thumbnail_bytes(1),
    "webp": webp_bytes(),
    "gif": gif_bytes(),
}

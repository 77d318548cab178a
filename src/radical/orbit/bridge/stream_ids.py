"""Redis Stream entry ids as event ids: ``<milliseconds>-<sequence>``, ordered as pairs.

With the Redis backplane the SSE id of an event is the id Redis gave it in the
stream, so the same id means the same event on every replica and a client resumes
anywhere. These helpers parse and compare such ids without trusting what a client
sent as ``Last-Event-ID``.
"""

from __future__ import annotations

__all__ = ["StreamKey", "format_key", "just_after", "parse_stream_id"]

StreamKey = tuple[int, int]

#: digits in the largest unsigned 64-bit number, the most either part can have
_MAX_DIGITS = 20


def _part(text: str) -> int | None:
    # ASCII digits only ("²".isdigit() is true, int("²") fails), and bounded in length
    if not text or len(text) > _MAX_DIGITS or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def parse_stream_id(text: str) -> StreamKey | None:
    """``"1700000000000-3"`` as ``(1700000000000, 3)``; None for anything else."""
    ms_text, sep, seq_text = text.strip().partition("-")
    if not sep:
        return None
    ms, seq = _part(ms_text), _part(seq_text)
    if ms is None or seq is None:
        return None
    return ms, seq


def format_key(key: StreamKey) -> str:
    return f"{key[0]}-{key[1]}"


def just_after(key: StreamKey) -> StreamKey:
    """The smallest id above ``key``: a floor there means "``key`` itself may be followed by a hole"."""
    return key[0], key[1] + 1

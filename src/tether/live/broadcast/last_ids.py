"""One SSE id for a subscription to several channels: the last id of each.

A browser keeps only the id of the last event it got, and sends it back as
``Last-Event-ID`` when it reconnects; so every event of a stream over several
channels carries the position on all of them. The id is ``channel=id`` pairs
joined by ``&``, each part percent-encoded from its UTF-8 (a lone surrogate as
``surrogatepass`` writes it): ASCII only, never CR, LF or NUL, and every str
comes back as it was.

Reading one back is tolerant: what is not such an encoding (a single-channel
id, junk, bytes that are not UTF-8) decodes to ``None``, which a subscription
treats as unknown ids (a gap, then the whole history); never an error.
"""

from __future__ import annotations

import typing as t
from urllib.parse import quote, unquote_to_bytes

__all__ = ["LastIds", "decode_last_ids", "encode_last_ids"]


def _quote(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def _unquote(text: str) -> str:
    return unquote_to_bytes(text).decode("utf-8", "surrogatepass")


def encode_last_ids(last_ids: t.Mapping[str, str]) -> str:
    """The SSE id of ``last_ids`` (channel -> last id)."""
    return "&".join(f"{_quote(channel)}={_quote(last_id)}" for channel, last_id in last_ids.items())


def decode_last_ids(text: str) -> dict[str, str] | None:
    """The channel -> last id mapping an SSE id encodes, ``None`` if it is
    none (then every id is unknown)."""
    if not text:
        return {}
    if not text.isascii():
        return None
    last_ids: dict[str, str] = {}
    for pair in text.split("&"):
        name, equals, value = pair.partition("=")
        if not equals or "=" in value:
            return None
        try:
            last_ids[_unquote(name)] = _unquote(value)
        except UnicodeDecodeError:
            return None
    return last_ids


class LastIds:
    """A subscription's last id per channel, with each channel's name encoded
    once, when it is joined: an event's id is then one join of short parts."""

    __slots__ = ("ids", "_names")

    def __init__(self) -> None:
        #: Channel -> the id of the last message taken (or where it was joined).
        self.ids: dict[str, str] = {}
        self._names: dict[str, str] = {}

    def join(self, channel: str, last_id: str) -> None:
        self._names[channel] = _quote(channel)
        self.ids[channel] = last_id

    def leave(self, channel: str) -> None:
        self.ids.pop(channel, None)
        self._names.pop(channel, None)

    def encoded(self, channel: str | None = None, last_id: str = "") -> str:
        """The SSE id, as it is or with ``channel`` moved on to ``last_id``."""
        names = self._names
        return "&".join(
            f"{names[name]}={_quote(last_id if name == channel else position)}" for name, position in self.ids.items()
        )

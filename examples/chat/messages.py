"""What a chat message is, and how one is said: the same from a view, the
Celery task and the announce script, which has no app (``Broadcast`` only)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from tether.live.broadcast import Broadcast

__all__ = ["MENTION", "say"]

#: ``@name`` in a message: that person hears of it on ``user:<name>``.
MENTION = re.compile(r"@([A-Za-z0-9_-]{1,24})")


def say(broadcast: Broadcast, room: str, author: str, text: str, kind: str = "user") -> str:
    """Publish ``text`` in ``room`` (event ``chat``), and a ``mention`` to each
    @name in it but the author's; the message's id. ``kind`` is ``user``,
    ``bot`` or ``announcement``: how the page shows it."""
    time = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    message = {"author": author, "text": text, "time": time, "kind": kind}
    message_id = broadcast.publish(f"room:{room}", message, event="chat")
    for name in sorted(set(MENTION.findall(text)) - {author}):
        broadcast.publish(f"user:{name}", {"room": room, **message}, event="mention")
    return message_id

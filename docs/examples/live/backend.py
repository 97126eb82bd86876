"""A broadcast backend of your own, chosen by the scheme of BROADCAST_URL."""

from __future__ import annotations

import typing as t

from tether import Tether
from tether.live.broadcast import BackendOptions, MemoryBackend, register_backend


class AuditedBackend(MemoryBackend):
    """memory:// that also keeps a log of what was published: a stand-in for a
    transport of your own (NATS, PostgreSQL LISTEN/NOTIFY...). A backend gives
    ids of the protocol's form, keeps the history, hands every message of a
    followed channel to options.deliver, and says whether it can share a
    periodic service's turns across processes (this one cannot)."""

    def __init__(self, url: str, options: BackendOptions) -> None:
        super().__init__(options.deliver, options.history)
        self.log: list[tuple[str, str]] = []

    def publish_now(self, channel: str, message: t.Any, event: str | None = None) -> str:
        message_id = super().publish_now(channel, message, event)
        self.log.append((channel, message_id))
        return message_id


# Or, from an installed package, an entry point in its pyproject.toml:
#   [project.entry-points."tether.broadcast_backends"]
#   audited = "my_package.backend:AuditedBackend"
register_backend("audited", AuditedBackend)

app = Tether(__name__)
app.config["BROADCAST_URL"] = "audited://"


@app.post("/news")
def news() -> dict[str, str]:
    return {"id": app.broadcast.publish("news", "hello")}

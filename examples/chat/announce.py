"""Say something in a room from outside the web app: a cron job, a deploy
script. It publishes on the broadcast the app's workers listen to, so every
page in the room shows it at once, and whoever joins later reads it in the
room's history.

    TETHER_BROADCAST_URL=redis://127.0.0.1:6379/0 python -m examples.chat.announce lobby "Deploy at 5"

``--url`` and ``--namespace`` default to ``TETHER_BROADCAST_URL`` and
``TETHER_BROADCAST_NAMESPACE`` (else ``chat-example``, the app's).
"""

from __future__ import annotations

import argparse
import os
import sys

from tether.live.broadcast import Broadcast

from .messages import say


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.chat.announce", description=__doc__.split("\n\n")[0])
    parser.add_argument("room")
    parser.add_argument("text")
    parser.add_argument("--author", default="announcement")
    parser.add_argument("--url", default=os.environ.get("TETHER_BROADCAST_URL"))
    parser.add_argument("--namespace", default=os.environ.get("TETHER_BROADCAST_NAMESPACE", "chat-example"))
    args = parser.parse_args(argv)
    if not args.url or args.url.startswith("memory:"):
        parser.error("the app's broadcast must be reachable from here: --url redis://... (or TETHER_BROADCAST_URL)")
    broadcast = Broadcast(args.url, namespace=args.namespace)
    message_id = say(broadcast, args.room, args.author, args.text, kind="announcement")
    print(message_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())

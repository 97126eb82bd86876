"""A maintenance script: the app's config and broadcast, outside any request."""

from tether import Broadcast, Tether, current_app, g


def announce(app: Tether, text: str) -> str:
    """Inside the app's context, as a cron job or a CLI command runs it."""
    with app.app_context():
        g.origin = "script"  # a fresh g, torn down when the block ends
        return current_app.broadcast.publish("announcements", {"text": text, "from": g.origin})


def announce_without_the_app(redis_url: str, namespace: str, text: str) -> str:
    """No app at all: name the namespace of the app that should hear it."""
    return Broadcast(redis_url, namespace=namespace).publish("announcements", {"text": text})

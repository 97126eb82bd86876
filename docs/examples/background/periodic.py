import time

from tether import Tether, current_app

app = Tether(__name__)
app.config.from_mapping(BROADCAST_URL="memory://", BROADCAST_NAMESPACE="shop")
app.config.from_prefixed_env()  # TETHER_BROADCAST_URL=redis://127.0.0.1:6379/0


@app.periodic(60, name="expire carts")
def expire_carts() -> None:
    # Every 60 s in each worker, in a fresh app context; runs never overlap.
    current_app.extensions.setdefault("expired", []).append(time.time())


@app.periodic(300, across="cluster", name="nightly report")
def report() -> None:
    # Once per 300 s across every worker and host sharing BROADCAST_URL's Redis
    # (on memory://, once per worker).
    current_app.broadcast.publish("reports", {"at": time.time()})

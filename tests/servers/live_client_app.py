"""An app for tests/test_live_client.py: the live endpoint, a rule that
refuses ``room:secret``, and a page that joins channels with the client."""

import os

from tether import Tether, request, url_for

app = Tether(__name__)
app.config["BROADCAST_URL"] = os.environ.get("BROADCAST_URL", "memory://")
app.config["BROADCAST_NAMESPACE"] = os.environ.get("BROADCAST_NAMESPACE", "rooms")
app.live("/live")


@app.channel("room:<name>")
def room(name: str) -> bool:
    return name != "secret"


PAGE = """<!doctype html>
<script src="{script}"></script>
<script>
window.received = [];
window.joined = [];
window.refused = [];
window.gaps = [];
window.transports = [];
const live = new TetherLive("/live", {{transport: "{transport}", minDelay: 100, maxDelay: 1000}});
live.on("message", (d) => window.received.push([d.channel, d.data]));
live.on("chat", (d) => window.received.push([d.channel, d.data]));
live.on("joined", (j) => window.joined.push(j.channel));
live.on("refused", (r) => window.refused.push(r.channel));
live.on("gap", (g) => window.gaps.push(g.channel));
live.on("open", (o) => window.transports.push(o.transport));
window.live = live;
for (const channel of {channels}) live.join(channel);
</script>
"""


@app.get("/")
def page() -> str:
    import json

    channels = request.args.getlist("join")
    transport = request.args.get("transport", "auto")
    return PAGE.format(script=url_for("live.client"), transport=transport, channels=json.dumps(channels))

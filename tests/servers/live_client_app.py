"""An app for tests/test_live_client*.py and tests/test_live_endpoint.py: the
live endpoint, a rule that refuses ``room:secret``, an async rule that lets a
client follow ``vip:<name>`` when its URL says ``?key=<name>``, and a page
that joins channels with the client."""

import asyncio
import os

from tether import Tether, request, url_for

app = Tether(__name__)
app.config["BROADCAST_URL"] = os.environ.get("BROADCAST_URL", "memory://")
app.config["BROADCAST_NAMESPACE"] = os.environ.get("BROADCAST_NAMESPACE", "rooms")
app.config["BROADCAST_HISTORY"] = int(os.environ.get("BROADCAST_HISTORY", "1000"))
app.config["BROADCAST_QUEUE_SIZE"] = int(os.environ.get("BROADCAST_QUEUE_SIZE", "100"))
app.live("/live")


@app.channel("room:<name>")
def room(name: str) -> bool:
    return name != "secret"


@app.channel("vip:<name>")
async def vip(name: str) -> bool:
    await asyncio.sleep(0)
    return request.args.get("key") == name


PAGE = """<!doctype html>
<script src="{script}"></script>
<script>
window.received = [];
window.joined = [];
window.refused = [];
window.gaps = [];
window.log = [];  // messages and gaps, in the order the app's code got them
window.transports = [];
const live = new TetherLive("/live", {{transport: "{transport}", minDelay: 100, maxDelay: 1000}});
const take = (d) => {{ window.received.push([d.channel, d.data]); window.log.push([d.channel, d.data]); }};
live.on("message", take);
live.on("chat", take);
live.on("joined", (j) => window.joined.push(j.channel));
live.on("refused", (r) => window.refused.push(r.channel));
live.on("gap", (g) => {{ window.gaps.push(g.channel); window.log.push([g.channel, "gap"]); }});
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

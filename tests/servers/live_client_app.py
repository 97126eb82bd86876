"""An app for tests/test_live_client*.py and tests/test_live_endpoint.py: the
live endpoint, a rule that refuses ``room:secret``, an async rule that lets a
client follow ``vip:<name>`` when its URL says ``?key=<name>``, presence in
``here:<name>`` as the name signed in at ``/login/<name>``, and a page that
joins channels with the client."""

import asyncio
import os

from tether import Tether, request, session, url_for

app = Tether(__name__)
app.secret_key = "test"
app.config["BROADCAST_URL"] = os.environ.get("BROADCAST_URL", "memory://")
app.config["BROADCAST_NAMESPACE"] = os.environ.get("BROADCAST_NAMESPACE", "rooms")
app.config["BROADCAST_HISTORY"] = int(os.environ.get("BROADCAST_HISTORY", "1000"))
app.config["BROADCAST_QUEUE_SIZE"] = int(os.environ.get("BROADCAST_QUEUE_SIZE", "100"))
app.config["SYNC_THREADS"] = int(os.environ.get("SYNC_THREADS", "40"))


def present_as(channel: str) -> tuple[str, dict[str, str]] | None:
    name = session.get("name")
    return (name, {"name": name}) if channel.startswith("here:") and name else None


app.live("/live", presence=present_as)


@app.channel("room:<name>")
def room(name: str) -> bool:
    return name != "secret"


@app.channel("vip:<name>")
async def vip(name: str) -> bool:
    await asyncio.sleep(0)
    return request.args.get("key") == name


@app.channel("here:<name>")
def here(name: str) -> bool:
    return True


@app.get("/login/<name>")
def login(name: str) -> str:
    session["name"] = name
    return "ok"


PAGE = """<!doctype html>
<script src="{script}"></script>
<script>
window.received = [];
window.joined = [];
window.refused = [];
window.gaps = [];
window.log = [];  // messages and gaps, in the order the app's code got them
window.transports = [];
window.members = {{}};  // present channel -> its member ids, as live.members() has them
window.presences = [];  // [action, member] of each presence event
const live = new TetherLive("/live", {{transport: "{transport}", minDelay: 100, maxDelay: 1000}});
const take = (d) => {{ window.received.push([d.channel, d.data]); window.log.push([d.channel, d.data]); }};
live.on("message", take);
live.on("chat", take);
live.on("joined", (j) => window.joined.push(j.channel));
live.on("refused", (r) => window.refused.push(r.channel));
live.on("gap", (g) => {{ window.gaps.push(g.channel); window.log.push([g.channel, "gap"]); }});
live.on("open", (o) => window.transports.push(o.transport));
live.on("members", (m) => {{ window.members[m.channel] = [...live.members(m.channel).keys()]; }});
live.on("presence", (d) => window.presences.push([d.data.presence, d.data.member]));
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

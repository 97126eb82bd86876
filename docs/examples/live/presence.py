from tether import Tether, session

app = Tether(__name__)
app.config.from_mapping(SECRET_KEY="dev", BROADCAST_NAMESPACE="chat")  # BROADCAST_URL="redis://..." across workers
app.config.from_prefixed_env()


def present_as(channel: str) -> tuple[str, dict[str, str]] | None:
    """Whether, and as whom, this connection is in a channel it joined: run in
    its context once the channel rules allowed the join (may be async def)."""
    name = session.get("name")
    if name is None or not channel.startswith("here:"):
        return None  # follows the channel without being in it
    return name, {"name": name}  # member id, and what others see of them


app.live("/live", presence=present_as)


@app.channel("here:<room>")
def here(room: str) -> bool:
    return "name" in session


@app.post("/login/<name>")
def login(name: str) -> tuple[str, int]:
    session["name"] = name
    return "", 204


@app.get("/rooms/<room>/members")
async def members(room: str) -> dict[str, object]:
    return {"members": await app.presence.amembers(f"here:{room}")}  # from any view, job or script


@app.get("/rooms/<room>/state")
def state(room: str) -> dict[str, object]:
    channel = f"room:{room}"
    last_id = app.broadcast.last_id(channel) or "0-0"  # read first: the page joins from it
    return {"channel": channel, "last_id": last_id, "messages": []}  # ... then the state itself

import asyncio

from tether import Tether, request, session

app = Tether(__name__)
app.config.from_mapping(
    SECRET_KEY="dev",
    BROADCAST_URL="memory://",  # redis://host:6379/0 to reach every worker and host
    BROADCAST_NAMESPACE="chat",  # this project's keys on a shared Redis
)
app.config.from_prefixed_env()
app.live("/live")  # /live/ws, /live/events (the SSE fallback) and /live/client.js


@app.channel("room:<name>")
def room(name: str) -> bool:
    return "user_id" in session  # any signed-in user, history included


@app.channel("user:<int:id>")
def inbox(id: int) -> bool:
    return session.get("user_id") == id  # only your own


TEAMS = {"ops": {7}}  # stands for a table


async def team_members(name: str) -> set[int]:
    await asyncio.sleep(0)  # an async database query, say
    return TEAMS.get(name, set())


@app.channel("team:<name>")
async def team(name: str) -> bool:
    return session.get("user_id") in await team_members(name)  # awaited on the connection's loop


@app.post("/login/<int:user_id>")
def login(user_id: int) -> tuple[str, int]:
    session["user_id"] = user_id
    return "", 204


@app.post("/rooms/<name>")
def say(name: str) -> tuple[str, int]:
    app.broadcast.publish(f"room:{name}", {"text": request.form["text"]}, event="chat")
    return "", 204

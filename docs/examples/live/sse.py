import asyncio
import time

from tether import EventStream, ServerSentEvent, Tether, request

app = Tether(__name__)


@app.get("/countdown")
def countdown() -> EventStream:
    # A sync source runs on a thread of its own; values are sent as JSON.
    start = int(request.args.get("from", 3))

    def numbers():
        for n in range(start, 0, -1):
            yield {"n": n}
            time.sleep(0.01)

    return EventStream(numbers())


@app.get("/clock")
async def clock() -> EventStream:
    # An async source runs on the event loop; ServerSentEvent sets the fields.
    async def ticks():
        for n in range(3):
            yield ServerSentEvent(f"tick {n}", event="tick", id=str(n), retry=2000)
            await asyncio.sleep(0.01)

    return EventStream(ticks(), keepalive=15)

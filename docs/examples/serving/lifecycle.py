from tether import Tether, current_app, request, stream_body

app = Tether(__name__)


@app.before_serving
def open_pool() -> None:
    # Once per worker, before the first request, in an app context.
    current_app.extensions["pool"] = {"open": True}


@app.after_serving
async def close_pool() -> None:
    # Once per worker, at shutdown (sync or async, as every hook).
    current_app.extensions["pool"]["open"] = False


@app.get("/sync")
def sync_view() -> dict[str, bool]:
    # Runs in the thread pool under ASGI: blocking calls are fine here.
    return {"pool open": current_app.extensions["pool"]["open"]}


@app.post("/json")
async def async_view() -> dict[str, object]:
    # Runs on the event loop; the body was read before, so request.json works.
    return {"got": request.json}


@app.post("/upload")
@stream_body
async def upload() -> dict[str, int]:
    # Reads the body as it arrives instead of first.
    size = 0
    async for chunk in request.iter_body():
        size += len(chunk)
    return {"bytes": size}

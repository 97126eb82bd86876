import time

from tether import Tether, current_app, current_job, request, signals

app = Tether(__name__)
app.config.update(SPAWN_THREADS=8, SPAWN_GRACE_PERIOD=10)


def resize(image_id: str) -> str:
    # An app context of its own, and a copy of the request that spawned it.
    width = int(request.args.get("width", 640))
    for _ in range(3):
        if current_job().cancel_requested:  # asked to stop (the server is stopping)
            return "stopped"
        time.sleep(0.01)
    current_app.logger.info("resized %s to %s", image_id, width)
    return f"{image_id}@{width}"


async def warm_cache(key: str) -> str:
    # An async function runs on the serving loop.
    return f"warmed {key}"


@app.post("/images/<image_id>/resize")
def start_resize(image_id: str) -> tuple[dict[str, str], int]:
    job = app.spawn(resize, image_id)
    return {"job": job.name}, 202


def flaky(image_id: str) -> None:
    raise LookupError(f"no image {image_id}")


@signals.spawned_work_failed.connect_via(app)
def alert(sender: Tether, function: str, exception: BaseException) -> None:
    # A failure is logged with the function's name anyway; this is for alerting.
    sender.extensions.setdefault("failed jobs", []).append(f"{function}: {exception}")

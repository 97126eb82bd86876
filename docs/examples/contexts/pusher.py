import threading

from tether import Tether, current_app, request

app = Tether(__name__)
app.config["GREETING"] = "hello"


def push(user: str) -> str:
    """Work that outlives the request: it reads the app's config, and the request."""
    message = f"{current_app.config['GREETING']} {user} from {request.headers['User-Agent']}"
    current_app.broadcast.publish(f"user:{user}", message)
    return message


@app.post("/thread/<user>")
def with_a_thread(user: str) -> tuple[str, int]:
    # Flask's habit: the thread has no context, so push() raises ContextError,
    # whose message says to use app.spawn.
    threading.Thread(target=push, args=(user,)).start()
    return "started", 202


@app.post("/spawn/<user>")
def with_spawn(user: str) -> tuple[dict[str, str], int]:
    # The job gets an app context of its own and a copy of this request.
    job = app.spawn(push, user)
    return {"job": job.name}, 202

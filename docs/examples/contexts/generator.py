from tether import Response, Tether, request

app = Tether(__name__)


@app.post("/jobs")
def run_job() -> Response:
    def progress():
        data = request.json  # read inside the generator, after the view returned
        for step in ("queued", "running", "done"):
            yield f"data: {step} {data['name']}\n\n"

    return Response(progress(), mimetype="text/event-stream")

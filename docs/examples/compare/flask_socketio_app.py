import json
import time

from flask import Flask, Response, request, stream_with_context
from flask_socketio import SocketIO, emit

app = Flask(__name__)
socketio = SocketIO(app, async_mode="threading")


@app.get("/hello/<name>")
def hello(name):
    return {"hello": name}


@socketio.on("echo")  # a Socket.IO event: its own protocol and client, not a plain WebSocket
def echo(message):
    emit("echo", message.upper())


@app.get("/ticks")
def ticks():
    @stream_with_context  # without it, request fails inside the generator
    def source():
        for n in range(int(request.args.get("count", 3))):
            yield f"data: {json.dumps({'tick': n})}\n\n"
            time.sleep(0.01)

    return Response(source(), mimetype="text/event-stream", headers={"Cache-Control": "no-cache"})


if __name__ == "__main__":
    socketio.run(app)  # its own server: WebSockets need eventlet, gevent or simple-websocket

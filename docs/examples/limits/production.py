from tether import Tether, request

app = Tether(__name__)
app.config.from_mapping(
    MAX_CONTENT_LENGTH=1024 * 1024,  # the largest body accepted: 413 past it, unread
    TRUSTED_HOSTS=["shop.example.com"],  # 400 for any other Host
    WEBSOCKET_ALLOWED_ORIGINS=["https://shop.example.com", "https://admin.example.com"],
    WEBSOCKET_MAX_MESSAGE_SIZE=64 * 1024,  # close 1009 past it; give the server the same limit
    SYNC_THREADS=40,  # sync views (and sync streams) at once under ASGI
    SSE_SEND_TIMEOUT=30,  # a stalled SSE client is dropped after this
)
app.config.from_prefixed_env()  # TETHER_MAX_CONTENT_LENGTH=..., TETHER_TRUSTED_HOSTS='["..."]'


@app.post("/upload")
def upload() -> dict[str, int]:
    return {"bytes": len(request.get_data())}

from tether import Tether

app = Tether(__name__)


@app.get("/")
def index() -> str:
    return "Hello from tether"

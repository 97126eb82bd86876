import click

from tether import Tether, current_app, websocket


def create_app(name="factory"):
    app = Tether(name)

    @app.route("/hello")
    def hello():
        return "hello"

    @app.post("/items/<int:id>")
    def item(id):
        return str(id)

    @app.route("/boom")
    def boom():
        raise LookupError("the boom view failed")

    @app.websocket("/ws")
    async def feed():
        await websocket.send("hi")

    @app.cli.command("whoami")
    def whoami():
        click.echo(f"app={current_app.name}")

    @click.command("init-db")  # a plain click command, added as Flask's tutorial does
    def init_db():
        click.echo(f"initialized {current_app.name}")

    app.cli.add_command(init_db)
    return app

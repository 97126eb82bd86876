import click

from tether import Tether, current_app


def create_app(name="factory"):
    app = Tether(name)

    @app.route("/hello")
    def hello():
        return "hello"

    @app.post("/items/<int:id>")
    def item(id):
        return str(id)

    @app.cli.command("whoami")
    def whoami():
        click.echo(f"app={current_app.name}")

    return app

from tether import DispatcherMiddleware, Tether, current_app, url_for

shop = Tether("shop")
admin = Tether("admin")


@shop.get("/")
def storefront() -> str:
    return f"{current_app.name}: see {url_for('storefront', _external=False)}"


@admin.get("/")
def dashboard() -> str:
    # url_for includes the mount prefix.
    return f"{current_app.name}: see {url_for('dashboard')}"


# One process, both apps: serve it with `uvicorn several_apps:application`.
application = DispatcherMiddleware(shop, {"/admin": admin})


def names_seen() -> list[str]:
    """Nested contexts of two apps, as in a script that copies data between them."""
    seen = []
    with shop.app_context():
        seen.append(current_app.name)
        with admin.app_context():
            seen.append(current_app.name)
        seen.append(current_app.name)
    return seen

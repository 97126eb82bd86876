"""Layer 4, serving: the protocol adapters. ``wsgi``; ``asgi_http`` (with
``asgi_request`` and ``asgi_body``); ``websocket``; ``lifespan``. Each
translates I/O and nothing else. ``lifecycle`` holds what serving one app needs
in a worker, ``entry`` lets one object be served by WSGI and ASGI servers,
``race`` waits for a stream's next item or its end."""

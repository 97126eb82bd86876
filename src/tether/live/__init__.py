"""Layer 5, live: Server-Sent Events (``sse``), fan-out (``broadcast``),
background jobs (``background``) and periodic services (``periodic``),
internal forwarding (``forwarding``), and request snapshots (``snapshot``)."""

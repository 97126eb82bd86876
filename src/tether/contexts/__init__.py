"""Layer 2, contexts: ``AppContext``, ``RequestContext`` and the WebSocket
context (``ctx``), the proxies and their errors (``globals``), running sync and
async user code as steps (``steps``), and carrying contexts into threads and
later work (``propagation``)."""

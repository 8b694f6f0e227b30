"""Start compiling UMAP's numba code in the background, so the Embeddings page's first projection is fast.

Two ways to start it, both idempotent (one warm-up thread per process):

- `start()`: from any script run (app.py calls `resources.start_background_warm_up()`, which calls this
  through a `st.cache_resource`). It begins with the first request to the server.
- `lifespan`: the async context manager for `st.App(..., lifespan=lifespan)`, which starts the warm-up when the
  server itself starts, before any browser connects::

      # serve.py, run with `streamlit run serve.py`
      import streamlit as st
      from components.embeddings.warmup import lifespan
      app = st.App("app.py", lifespan=lifespan)
"""

from __future__ import annotations

from contextlib import asynccontextmanager


def start() -> None:
    """Start `encoderscope.projection.warm_up()` in a daemon thread (no-op once started)."""
    from encoderscope import projection

    projection.start_warm_up()


@asynccontextmanager
async def lifespan(_app):
    """ASGI lifespan hook: start the UMAP warm-up at server start; nothing to clean up (daemon thread)."""
    start()
    yield None

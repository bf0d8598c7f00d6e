"""The Jupyter server extension: the pool's HTTP surface (REST, SSE, OpenAI routes, metrics).

Knows nothing of torch or IPython: handlers only move bytes between clients and the pool.
``app.LLMExtension`` is the entry point; ``jupyter_llm._jupyter_server_extension_points``
names it.
"""

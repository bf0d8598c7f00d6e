"""A model served by another OpenAI-compatible server (vLLM, llama.cpp, another
jupyter_llm): ``engine.py`` drives its streams from the pool's own loop, ``wire.py`` maps our
requests and its chunks, ``http1.py`` is the HTTP/1.1 client they travel on."""

"""The worker-side model code: a transformers checkpoint loaded into a worker process and
decoded with continuous batching (``engine.py``'s step loop). Llama-family models take our
own forward (``llama.py`` on ``llama_path.py``'s slot cache); every other model takes
transformers' forward (``hf_path.py``). ``spec.py`` is the picklable description the server
holds; nothing else here is imported outside a worker, and nothing imports torch at package
import."""

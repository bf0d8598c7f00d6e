"""Where a model's weights come from, without torch: the Hugging Face Hub (``hub.py``,
resumable downloads with progress in ``transfer.py``), a local folder, or a GGUF file
converted once into a local cache (``resolve.py``). Used by the workers before a model loads
and by ``jupyter llm pull`` / ``jupyter llm models``."""

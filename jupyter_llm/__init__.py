"""jupyter_llm: local LLM inference in Jupyter that never blocks."""

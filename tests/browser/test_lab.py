"""JupyterLab with jupyter_llm: the page loads and the pool answers from the same server."""

from __future__ import annotations

from typing import Any

from .conftest import TINY, Lab


def test_lab_loads_with_the_tiny_model_ready(page: Any, lab: Lab) -> None:
    assert page.title() != ""
    models = page.evaluate(
        """async () => {
            const config = JSON.parse(
                document.getElementById('jupyter-config-data').textContent);
            const xsrf = document.cookie.match(/_xsrf=([^;]+)/);
            const response = await fetch(config.baseUrl + 'llm/api/models', {
                headers: xsrf ? {'X-XSRFToken': decodeURIComponent(xsrf[1])} : {},
            });
            return {status: response.status, body: await response.json()};
        }"""
    )
    assert models["status"] == 200
    states = {m["name"]: m["state"] for m in models["body"]["models"]}
    assert states[TINY] == "ready"
    assert lab.model(TINY)["state"] == "ready"

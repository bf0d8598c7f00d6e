"""Helpers for driving the jupyter_llm panel in a Playwright page."""

from __future__ import annotations

from typing import Any

STATUS = ".jp-llm-Status"
ANSWER = ".jp-llm-Message-assistant"
LAST_ANSWER = f"{ANSWER} >> nth=-1"


def notebook_json(*extra_cells: dict[str, Any]) -> dict[str, Any]:
    """A saved notebook whose first cell ran ``print(9 ** 2)`` (its output, 81, is kept),
    then ``extra_cells``."""
    ran = {
        "cell_type": "code",
        "execution_count": 1,
        "metadata": {},
        "outputs": [{"name": "stdout", "output_type": "stream", "text": ["81\n"]}],
        "source": ["print(9 ** 2)"],
    }
    return {
        "cells": [ran, *extra_cells],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def command(page: Any, name: str, args: dict[str, Any] | None = None) -> Any:
    """Run a JupyterLab command in the page and return its result."""
    return page.evaluate(
        "([name, args]) => window.jupyterapp.commands.execute(name, args)", [name, args or {}]
    )


def open_chat(page: Any, model: str | None = None) -> None:
    command(page, "jupyter-llm:open-chat")
    page.wait_for_selector(".jp-llm-Chat-input", state="visible")
    if model is not None:
        page.wait_for_selector(f".jp-llm-Chat-model option[value='{model}']", state="attached")
        page.select_option(".jp-llm-Chat-model", model)


def send(page: Any, text: str) -> None:
    page.fill(".jp-llm-Chat-input", text)
    page.press(".jp-llm-Chat-input", "Enter")  # Enter sends by default


def answer_job_id(page: Any) -> str:
    """The id of the job behind the page's last answer (once the server has taken it)."""
    page.wait_for_selector(f"{ANSWER}[data-job-id] >> nth=-1", state="attached")
    return str(page.get_attribute(LAST_ANSWER, "data-job-id"))


def wait_status(page: Any, status: str, timeout: float = 30) -> None:
    page.wait_for_selector(
        f"{ANSWER}[data-status='{status}'] >> nth=-1", state="attached", timeout=timeout * 1000
    )


def record_texts(page: Any) -> None:
    """Collect every text the last answer shows, as it changes, into ``window.llmTexts``."""
    page.evaluate(
        """() => {
            window.llmTexts = [];
            const seen = () => {
                const answers = document.querySelectorAll(
                    '.jp-llm-Message-assistant .jp-llm-Message-body');
                const last = answers[answers.length - 1];
                const text = last ? last.textContent : '';
                if (window.llmTexts[window.llmTexts.length - 1] !== text) {
                    window.llmTexts.push(text);
                }
            };
            new MutationObserver(seen).observe(
                document.querySelector('.jp-llm-Chat-messages'),
                {childList: true, subtree: true, characterData: true});
        }"""
    )

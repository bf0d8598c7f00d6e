"""Jobs belong to users: a real server with three identities (ada, bob and root, an admin).

jupyter-server's identity provider is swapped for one that names the user by the token, as
JupyterHub's names the hub user; ``private_jobs`` is on and ``root`` is a job admin. The
mailbox is a real sqlite file, so listing one user's jobs goes through its query.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from jupyter_server.auth.identity import IdentityProvider, User
from tornado import web
from traitlets.config import Config

from jupyter_llm.server.owners import admins, everyone, username

from .client import LLMServer, read_events
from .conftest import MODEL
from .test_openapi import Contract

TOKENS = {"ada-token": "ada", "bob-token": "bob", "root-token": "root"}


class TokenPerUser(IdentityProvider):
    """Each user has a token of their own (JupyterHub's API tokens work so)."""

    def get_user(self, handler: web.RequestHandler) -> User | None:
        name = TOKENS.get(self.get_token(handler) or "")
        if name is None:
            return None
        handler._token_authenticated = True  # type: ignore[attr-defined]  # no XSRF check
        return User(name)


@pytest.fixture
def jp_server_config(llm_yaml: Path) -> Config:
    config = yaml.safe_load(llm_yaml.read_text())
    mailbox = {"backend": "sqlite", "path": str(llm_yaml.parent / "mailbox.sqlite")}
    config["parking_lot"]["mailbox"] = mailbox
    llm_yaml.write_text(yaml.safe_dump(config))
    return Config(
        {
            "ServerApp": {
                "jpserver_extensions": {"jupyter_llm": True, "jupyter_server_terminals": False},
                "identity_provider_class": TokenPerUser,
            },
            "LLMExtension": {
                "config_file": str(llm_yaml),
                "keepalive_secs": 0.1,
                "drain_secs": 0.5,
                "freeze_gc": False,
                "private_jobs": True,
                "job_admins": {"root"},
            },
        }
    )


def as_user(llm: LLMServer, name: str) -> httpx.AsyncClient:
    return llm.client(token=f"{name}-token")


async def submit(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("llm/api/jobs", json={"model": MODEL, "prompt": "a b", **body})
    assert response.status_code == 202, response.text
    return dict(response.json())


async def test_a_user_sees_and_cancels_only_their_own_jobs(llm: LLMServer) -> None:
    async with as_user(llm, "ada") as ada, as_user(llm, "bob") as bob:
        job = await submit(ada, max_tokens=200)
        assert job["user"] == "ada"
        mine = await submit(bob, max_tokens=1)
        assert mine["user"] == "bob"
        unknown = (await bob.get("llm/api/jobs/no-such-job")).json()["error"]

        for response in (
            await bob.get(f"llm/api/jobs/{job['id']}"),
            await bob.delete(f"llm/api/jobs/{job['id']}"),
            await bob.get(f"llm/api/jobs/{job['id']}/events"),
        ):
            assert response.status_code == 404, response.text
            error = response.json()["error"]
            assert (error["code"], error["type"]) == (unknown["code"], unknown["type"])
            assert error["message"] == unknown["message"].replace("no-such-job", job["id"])
        listed = (await bob.get("llm/api/jobs")).json()["jobs"]
        assert [j["id"] for j in listed] == [mine["id"]]

        record = (await ada.get(f"llm/api/jobs/{job['id']}")).json()
        assert record["user"] == "ada" and record["status"] != "cancelled"  # bob's DELETE missed
        assert [j["id"] for j in (await ada.get("llm/api/jobs")).json()["jobs"]] == [job["id"]]
        async with ada.stream("GET", f"llm/api/jobs/{mine['id']}/events") as events:
            assert events.status_code == 404
        cancelled = await ada.delete(f"llm/api/jobs/{job['id']}")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


async def test_an_admin_sees_and_cancels_everyones_jobs(llm: LLMServer) -> None:
    async with (
        as_user(llm, "ada") as ada,
        as_user(llm, "bob") as bob,
        as_user(llm, "root") as root,
    ):
        ada_job = await submit(ada, max_tokens=1)
        bob_job = await submit(bob, max_tokens=200)
        listed = (await root.get("llm/api/jobs")).json()["jobs"]
        assert {(j["id"], j["user"]) for j in listed} == {
            (ada_job["id"], "ada"),
            (bob_job["id"], "bob"),
        }
        async with root.stream("GET", f"llm/api/jobs/{ada_job['id']}/events") as events:
            assert events.status_code == 200
            assert (await anext(read_events(events))).json()["id"] == ada_job["id"]
        cancelled = await root.delete(f"llm/api/jobs/{bob_job['id']}")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert (await bob.get(f"llm/api/jobs/{bob_job['id']}")).json()["status"] == "cancelled"


async def test_openai_jobs_are_recorded_under_their_user(llm: LLMServer) -> None:
    client = openai.AsyncOpenAI(base_url=llm.v1, api_key="bob-token", max_retries=0)
    try:
        await client.completions.create(model=MODEL, prompt="a b", max_tokens=2)
    finally:
        await client.close()
    async with as_user(llm, "bob") as bob, as_user(llm, "ada") as ada:
        assert [j["user"] for j in (await bob.get("llm/api/jobs")).json()["jobs"]] == ["bob"]
        assert (await ada.get("llm/api/jobs")).json()["jobs"] == []


SHARED = {"backend": "fake", "params": {"max_tokens": 8, "max_num_seqs": 1}}


@pytest.mark.llm_config(
    parking_lot={"limits": {"timeout_secs": 30, "max_queued_per_user": 1}}, shared=SHARED
)
async def test_a_user_past_max_queued_per_user_gets_a_429_naming_it(llm: LLMServer) -> None:
    response = await llm.request("GET", "llm/api/openapi.json", headers=_auth("root"))
    contract = Contract(response.json())
    async with as_user(llm, "ada") as ada, as_user(llm, "bob") as bob:
        running = await submit(ada, model="shared", prompt="long " * 5, max_tokens=200)
        waiting = await submit(ada, model="shared", max_tokens=1)
        refused = await ada.post("llm/api/jobs", json={"model": "shared", "prompt": "x"})
        assert refused.status_code == 429, refused.text
        contract.check(refused)
        assert int(refused.headers["Retry-After"]) >= 1
        error = refused.json()["error"]
        assert (error["code"], error["type"]) == ("user_limit_reached", "rate_limit_error")
        assert (error["limit"], error["maximum"]) == ("max_queued_per_user", 1)
        assert (error["user"], error["model"], error["param"]) == ("ada", "shared", None)
        assert "max_queued_per_user" in error["message"]
        # the queue has room for someone else
        others = await submit(bob, model="shared", max_tokens=1)
        contract.check(await bob.get(f"llm/api/jobs/{others['id']}"))

        chat = openai.AsyncOpenAI(base_url=llm.v1, api_key="ada-token", max_retries=0)
        try:
            with pytest.raises(openai.RateLimitError) as caught:
                await chat.chat.completions.create(
                    model="shared", messages=[{"role": "user", "content": "x"}]
                )
        finally:
            await chat.close()
        assert caught.value.code == "user_limit_reached"
        for client, job in ((ada, running), (ada, waiting), (bob, others)):
            await client.delete(f"llm/api/jobs/{job['id']}")
    status = await llm.request("GET", "llm/api/status", headers=_auth("root"))
    assert status.json()["models"]["shared"]["rejected"] == 2


def _auth(name: str) -> dict[str, str]:
    return {"Authorization": f"token {name}-token"}


def test_the_admin_policies() -> None:
    assert username(User("ada")) == "ada"
    assert username({"name": "bob", "scopes": []}) == "bob"  # a hub service's user model
    assert username(None) is None and username({"name": ""}) is None
    assert everyone(User("anyone"))
    root_only = admins({"root"})
    assert root_only(User("root")) and not root_only(User("ada")) and not root_only(None)


async def test_the_mailbox_is_the_sqlite_file(llm: LLMServer) -> None:
    settings = llm.pool.config.parking_lot.mailbox
    assert settings.backend == "sqlite" and settings.path.endswith("mailbox.sqlite")

"""Which jupyter_llm to talk to, in the order docs/interfaces.md gives.

1. ``JUPYTER_LLM_URL`` (the server's base URL) with ``JUPYTER_LLM_TOKEN``, when set;
2. else the running Jupyter server that hosts this kernel: every jupyter-server writes
   ``jpserver-<pid>.json`` (url, token, pid...) into the Jupyter runtime directory. The one
   whose pid is the kernel's launcher (``JPY_PARENT_PID``, set by jupyter_client) or one of
   its ancestor processes hosts it; failing that, the one that knows this kernel's id
   (``GET api/kernels/<id>``, the id taken from the connection file's name). It is used if it
   serves ``llm/api`` (the jupyter_llm extension is enabled there);
3. else an embedded pool in the kernel process, from the same models.yaml a server reads.

``discover`` only looks; ``Client`` turns the ``Target`` into a backend.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import httpx

from ..config import resolve_config_path

__all__ = ["ServerInfo", "Target", "discover", "hosting_server", "running_servers"]

URL_ENV = "JUPYTER_LLM_URL"
TOKEN_ENV = "JUPYTER_LLM_TOKEN"


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """One running Jupyter server, as its ``jpserver-<pid>.json`` describes it."""

    url: str  # base URL, ending with "/"
    token: str
    pid: int
    socket: str | None = None  # a Unix socket the server listens on instead of a port
    file: str = ""


@dataclass(frozen=True, slots=True)
class Target:
    """Where the models are: a server (``url``, from the environment or hosting the kernel)
    or an embedded pool (``config_path``); ``why`` says how it was chosen."""

    kind: Literal["env", "server", "embedded"]
    why: str
    url: str | None = None
    token: str | None = None
    socket: str | None = None
    config_path: Path | None = None


def discover(
    environ: Mapping[str, str] | None = None,
    *,
    runtime_dir: str | Path | None = None,
    ancestors: Sequence[int] | None = None,
    kernel_id: str | None = None,
    cwd: str | None = None,
    timeout: float = 2.0,
) -> Target:
    env = os.environ if environ is None else environ
    url = env.get(URL_ENV, "").strip()
    if url:
        return Target("env", f"{URL_ENV} is set", base_url(url), env.get(TOKEN_ENV) or None)
    servers = running_servers(runtime_dir)
    host = hosting_server(
        servers,
        ancestors=kernel_ancestors(env) if ancestors is None else ancestors,
        kernel_id=kernel_id if kernel_id is not None else connection_kernel_id(),
        timeout=timeout,
    )
    if host is None:
        why = "no JUPYTER_LLM_URL, and no running Jupyter server hosts this kernel"
    else:
        serves = serves_llm(host, timeout)
        if serves is True:
            where = f"the Jupyter server hosting this kernel (pid {host.pid})"
            return Target("server", where, host.url, host.token or None, host.socket)
        why = f"the Jupyter server hosting this kernel ({host.url}) {serves}"
    config_path = resolve_config_path(None, root_dir=cwd or os.getcwd())
    return Target("embedded", why, config_path=config_path)


def base_url(url: str) -> str:
    """A server's base URL from what a user may paste (also ``.../llm/api`` or ``.../llm/v1``)."""
    url = url.rstrip("/")
    for suffix in ("/llm/api", "/llm/v1"):
        url = url.removesuffix(suffix)
    return url + "/"


def running_servers(runtime_dir: str | Path | None = None) -> list[ServerInfo]:
    """Jupyter servers whose runtime file names a live process, newest first."""
    if runtime_dir is None:
        from jupyter_core.paths import jupyter_runtime_dir

        runtime_dir = jupyter_runtime_dir()
    folder = Path(runtime_dir)
    if not folder.is_dir():
        return []
    files = sorted(folder.glob("jpserver-*.json"), key=_mtime, reverse=True)
    servers = []
    for file in files:
        info = _read_server(file)
        if info is not None and _alive(info.pid):
            servers.append(info)
    return servers


def hosting_server(
    servers: Sequence[ServerInfo],
    *,
    ancestors: Sequence[int],
    kernel_id: str | None,
    timeout: float = 2.0,
) -> ServerInfo | None:
    for pid in ancestors:
        for server in servers:
            if server.pid == pid:
                return server
    if kernel_id:  # a kernel started through a nanny or a provisioner: ask each server
        for server in servers:
            if _knows_kernel(server, kernel_id, timeout):
                return server
    return None


def serves_llm(server: ServerInfo, timeout: float = 2.0) -> bool | str:
    """True when the server answers ``llm/api/models``; else why not, in words."""
    try:
        with _client(server, timeout) as client:
            response = client.get("llm/api/models")
    except httpx.HTTPError as exc:
        return f"did not answer ({type(exc).__name__})"
    if response.status_code == 200:
        return True
    if response.status_code == 404:
        return "does not run the jupyter_llm extension"
    return f"answered llm/api/models with HTTP {response.status_code}"


def kernel_ancestors(environ: Mapping[str, str]) -> list[int]:
    """The process that launched this kernel (jupyter_client says so), then its ancestors."""
    pids: list[int] = []
    launcher = environ.get("JPY_PARENT_PID", "")
    if launcher.isdigit():
        pids.append(int(launcher))
    pid = os.getpid()
    for _ in range(8):  # a few levels: a server may start kernels through a shell or nanny
        parent = _parent_of(pid)
        if parent is None or parent <= 1:
            break
        if parent not in pids:
            pids.append(parent)
        pid = parent
    return pids


def connection_kernel_id() -> str | None:
    """This kernel's id, when its connection file is named as jupyter-server names them."""
    try:
        from ipykernel.connect import get_connection_file

        name = Path(get_connection_file()).name
    except Exception:  # not in a kernel, or a kernel that is not ipykernel
        return None
    match = re.fullmatch(r"kernel-([0-9a-fA-F-]{8,})\.json", name)
    return match.group(1) if match else None


def _client(server: ServerInfo, timeout: float) -> httpx.Client:
    headers = {"Authorization": f"token {server.token}"} if server.token else {}
    transport = httpx.HTTPTransport(uds=server.socket) if server.socket else None
    return httpx.Client(base_url=server.url, headers=headers, timeout=timeout, transport=transport)


def _knows_kernel(server: ServerInfo, kernel_id: str, timeout: float) -> bool:
    try:
        with _client(server, timeout) as client:
            return client.get(f"api/kernels/{quote(kernel_id)}").status_code == 200
    except httpx.HTTPError:
        return False


def _read_server(file: Path) -> ServerInfo | None:
    try:
        data = json.loads(file.read_text())
        pid = int(data["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    socket = data.get("sock") or None
    if socket:  # the URL of a socket server is http+unix://...; talk HTTP over the socket
        url = "http://localhost" + (data.get("base_url") or "/")
    else:
        url = str(data.get("url") or "")
        if not url:
            return None
    return ServerInfo(base_url(url), str(data.get("token") or ""), pid, socket, str(file))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, but alive
    except OSError:
        return False
    return True


def _parent_of(pid: int) -> int | None:
    if pid == os.getpid():
        return os.getppid()
    try:  # Linux; elsewhere the launcher's pid (JPY_PARENT_PID) has to do
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None


def _mtime(file: Path) -> float:
    try:
        return file.stat().st_mtime
    except OSError:
        return 0.0

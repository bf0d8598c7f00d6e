"""Who a request comes from, and whether it may see every user's jobs.

A job belongs to the user who submitted it. A user lists, reads, streams and cancels their
own jobs; an admin sees all. Who is an admin is a policy handed to the handlers in their
state (``LLMState.admin``), so each host decides it in its own terms: the single-user
extension by its traits, a hub service by the scopes of the hub's user model.

The policy is given the request's ``current_user``: jupyter-server's ``User``, or whatever
the host's authentication puts there (a hub service's user model is a dict).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

__all__ = ["AdminPolicy", "admins", "everyone", "username"]

#: Whether the request's ``current_user`` sees and cancels every user's jobs.
AdminPolicy = Callable[[Any], bool]


def username(user: object) -> str | None:
    """The name a job records for ``user``: jupyter-server's ``User.username``, a hub user
    model's ``name``; None when the request names nobody."""
    name = user.get("name") if isinstance(user, Mapping) else getattr(user, "username", None)
    return name if isinstance(name, str) and name else None


def everyone(user: object) -> bool:
    """Every authenticated request sees every job: the single-user server's default."""
    return True


def admins(names: Collection[str]) -> AdminPolicy:
    """Only these usernames see every job; everyone else sees their own."""
    chosen = frozenset(names)

    def is_admin(user: object) -> bool:
        return username(user) in chosen

    return is_admin

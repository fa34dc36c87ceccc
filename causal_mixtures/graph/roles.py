"""The node roles of a causal graph: their names and the validation of a role name.

A role (``cause``, ``effect``, ``mechanism``, ``covariate``) tells the estimators which data
column plays which part; ``docs/graphs.md`` explains each one.
"""

from __future__ import annotations

from typing import Any

__all__ = ["KNOWN_ROLES", "check_role"]

#: The roles a node may play, in canonical order.
KNOWN_ROLES: tuple[str, ...] = ("cause", "effect", "mechanism", "covariate")

# Words from other tools that users are likely to type, mapped to our role names.
_ROLE_HINTS: dict[str, str] = {
    "exposure": "cause",
    "treatment": "cause",
    "label": "cause",
    "outcome": "effect",
    "features": "effect",
    "mediator": "mechanism",
    "adjusted": "covariate",
    "confounder": "covariate",
}


def check_role(role: Any) -> str:
    """Return ``role`` if it is a known role, else raise ``ValueError`` (with a hint)."""
    if isinstance(role, str) and role in KNOWN_ROLES:
        return role
    message = f"unknown role {role!r}: the known roles are {', '.join(KNOWN_ROLES)}"
    if isinstance(role, str) and role.lower() in _ROLE_HINTS:
        message += f" (for {role!r} use {_ROLE_HINTS[role.lower()]!r})"
    raise ValueError(message)

"""API tokens: creation, hashing, checking, roles.

A token is ``tirtasu_`` followed by 32 random bytes (URL-safe base64) from :mod:`secrets`. It is
shown once, at creation; the store keeps only its SHA-256. A plain, unsalted, fast hash is
enough here because the secret has 256 bits of entropy: nobody can guess or brute-force it from
the hash, unlike a password, for which a slow salted hash (bcrypt, scrypt, argon2) exists to make
guessing a *low*-entropy secret expensive. A fast hash also lets each request find its token by
an indexed equality lookup on the hash, with no timing difference that depends on the secret.

Roles are ordered: ``viewer`` (read everything) < ``operator`` (also acknowledges, assigns and
closes alarms, posts readings) < ``admin`` (also manages sensors and tokens).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

__all__ = ["ROLES", "Principal", "create_token", "hash_token", "authenticate", "AuthError"]

ROLES = ("viewer", "operator", "admin")
RANK = {role: i for i, role in enumerate(ROLES)}
PREFIX = "tirtasu_"
MAX_TOKEN_LENGTH = 200  # a real token has 51 characters; anything much longer is refused unhashed


class AuthError(Exception):
    """A request that cannot be let through: ``status`` 401 (who are you?) or 403 (not allowed)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's id, name and role."""

    token_id: str
    name: str
    role: str

    def may(self, role: str) -> bool:
        """True if this principal has ``role`` or a higher one."""
        return RANK[self.role] >= RANK[role]


def hash_token(token: str) -> str:
    """The SHA-256 (hex) under which a token is stored."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(store, name: str, role: str) -> tuple[str, str]:
    """Make a token, store its hash and return ``(token_id, secret)``; the secret is shown once.

    Parameters
    ----------
    store : tirtasu.store.Store
    name : str
        Who or what uses it (``alice``, ``scada-gateway``), 1–100 printable characters.
    role : {"viewer", "operator", "admin"}

    Raises
    ------
    ValueError
        Unknown role or an empty or unprintable name.
    """
    if role not in RANK:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    name = str(name).strip()
    if not name or len(name) > 100 or not name.isprintable():
        raise ValueError("a token's name must be 1 to 100 printable characters")
    secret = PREFIX + secrets.token_urlsafe(32)
    token_id = secrets.token_hex(4)  # short, public: shown in lists, used to revoke
    store.put_token(token_id, name, role, hash_token(secret))
    return token_id, secret


def authenticate(store, authorization: str | None, role: str) -> Principal:
    """Check an ``Authorization`` header against the store and the role needed.

    Raises
    ------
    AuthError
        401 without a bearer token, or with an unknown or revoked one; 403 if its role is below
        ``role``.
    """
    if not authorization:
        raise AuthError(401, "a bearer token is needed: Authorization: Bearer <token>")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError(401, "a bearer token is needed: Authorization: Bearer <token>")
    if len(token) > MAX_TOKEN_LENGTH or not token.startswith(PREFIX):
        raise AuthError(401, "invalid or revoked token")
    rows = store.tokens(token_hash=hash_token(token))
    if rows.empty or rows["revoked_at"].notna().iloc[0]:
        raise AuthError(401, "invalid or revoked token")
    row = rows.iloc[0]
    who = Principal(token_id=str(row["token_id"]), name=str(row["name"]), role=str(row["role"]))
    if who.role not in RANK:  # a row written by hand with a role this version does not know
        raise AuthError(403, f"token {who.token_id} has an unknown role {who.role!r}")
    if not who.may(role):
        raise AuthError(403, f"this needs the {role} role; token {who.token_id} ({who.name}) is {who.role}")
    return who

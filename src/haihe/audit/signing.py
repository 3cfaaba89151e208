"""The platform's checkpoint key — 签名密钥: Ed25519, one private key per installation.

The private key lives in DATA_DIR/audit-signing.key (PEM, PKCS#8, created on first use with mode
0600) unless ``audit_signing_key_file`` names another file. Verifiers need only the public key
(``haihe audit keys`` prints it), so an auditor can check a copy of the ledger on another machine
without being able to forge a checkpoint.

What a checkpoint signs is plain text: ``haihe-audit-checkpoint ␟ chain ␟ seq ␟ hash ␟ micros``,
and, when it seals a block (``chain.block_digest``), ``haihe-audit-block ␟ chain ␟ seq ␟ hash ␟
micros ␟ first_seq ␟ digest``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from haihe.audit.chain import SEP, micros
from haihe.core.errors import BadRequest, StorageError
from haihe.core.settings import Settings

KEY_FILE = "audit-signing.key"
PURPOSE = "haihe-audit-checkpoint"
BLOCK_PURPOSE = "haihe-audit-block"
# A sealed block: its first sequence number and its digest.
Block = tuple[int, str]


def key_path(settings: Settings) -> Path:
    """Where this installation's signing key is kept."""
    return settings.audit_signing_key_file or settings.data_dir / KEY_FILE


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The installation's private signing key, created on first use (owner-only file)."""
    path = key_path(settings)
    if not path.exists():
        if settings.audit_signing_key_file is not None:
            raise StorageError(f"audit signing key file {path} does not exist")
        _create(path)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise StorageError(f"audit signing key {path} cannot be read: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise StorageError(f"audit signing key {path} is not an Ed25519 private key")
    return key


def local_public_key(settings: Settings) -> Ed25519PublicKey | None:
    """The public half of this installation's key, or None before any key was made."""
    if not key_path(settings).exists():
        return None
    return signing_key(settings).public_key()


def _create(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process created it first
    except OSError as exc:
        raise StorageError(f"audit signing key {path} cannot be created: {exc.strerror}") from None
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)


def public_pem(key: Ed25519PublicKey) -> str:
    """The public key as PEM text (SubjectPublicKeyInfo), what ``--public-key`` reads."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def key_id(key: Ed25519PublicKey) -> str:
    """A short name of a public key: the first 16 hex characters of SHA-256 of its raw bytes."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file (a private key file gives its public half)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadRequest(f"public key file {path} cannot be read: {exc.strerror}") from None
    return public_key_from_pem(data, source=str(path))


def public_key_from_pem(data: bytes, *, source: str = "the public key") -> Ed25519PublicKey:
    """An Ed25519 public key from PEM bytes; BadRequest when they are something else."""
    try:
        if b"PRIVATE KEY" in data:
            private = serialization.load_pem_private_key(data, password=None)
            if isinstance(private, Ed25519PrivateKey):
                return private.public_key()
            raise ValueError("not an Ed25519 key")
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"{source} is not an Ed25519 key in PEM form: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise BadRequest(f"{source} is not an Ed25519 public key")
    return key


def message(chain: str, seq: int, hash_: str, at: dt.datetime, block: Block | None = None) -> bytes:
    """The bytes a checkpoint's signature covers."""
    fields = [PURPOSE, chain, str(seq), hash_, str(micros(at))]
    if block is not None:
        fields[0] = BLOCK_PURPOSE
        fields += [str(block[0]), block[1]]
    return SEP.join(fields).encode()


def sign(
    key: Ed25519PrivateKey,
    chain: str,
    seq: int,
    hash_: str,
    at: dt.datetime,
    block: Block | None = None,
) -> str:
    """The hex signature of a checkpoint (and of the block it seals, if any)."""
    return key.sign(message(chain, seq, hash_, at, block)).hex()


def is_valid(
    key: Ed25519PublicKey,
    signature: str,
    chain: str,
    seq: int,
    hash_: str,
    at: dt.datetime,
    block: Block | None = None,
) -> bool:
    """True when ``signature`` is ``key``'s signature of this checkpoint."""
    try:
        key.verify(bytes.fromhex(signature), message(chain, seq, hash_, at, block))
    except (InvalidSignature, ValueError):
        return False
    return True


def block_of(first_seq: int | None, digest: str | None) -> Block | None:
    """A checkpoint's sealed block from its columns; None when it seals none. Half a block (one
    column emptied) is signed as neither, so its signature fails."""
    if first_seq is None and digest is None:
        return None
    return (-1 if first_seq is None else first_seq, digest or "")

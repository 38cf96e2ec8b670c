"""CRM credentials and OAuth access tokens at rest: KMS Encrypt/Decrypt under the template's `CrmCredentialsKey`,
bound to their connection by the encryption context (a ciphertext copied to another tenant's or connection's item
does not decrypt). Plaintexts live only in memory (decrypted values cached per worker process for five minutes,
keyed by a hash of the ciphertext); nothing here logs a secret or a ciphertext.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from conveyor.platform.aws import client
from conveyor.platform.settings import SettingsError, get_settings

CACHE_SECONDS = 300
_cache: dict[str, tuple[float, bytes]] = {}


def _context(tenant_id: str, connection_id: str, purpose: str) -> dict[str, str]:
    return {"tenant_id": tenant_id, "connection_id": connection_id, "purpose": purpose}


def _key_id() -> str:
    key = get_settings().crm_credentials_key
    if not key:
        raise SettingsError("invalid environment: CRM_CREDENTIALS_KEY is not set (template.yaml gives it)")
    return key


def encrypt(tenant_id: str, connection_id: str, purpose: str, plaintext: bytes) -> bytes:
    response = client("kms").encrypt(
        KeyId=_key_id(), Plaintext=plaintext, EncryptionContext=_context(tenant_id, connection_id, purpose)
    )
    return bytes(response["CiphertextBlob"])


def decrypt(tenant_id: str, connection_id: str, purpose: str, ciphertext: bytes) -> bytes:
    slot = hashlib.sha256(f"{tenant_id}|{connection_id}|{purpose}|".encode() + ciphertext).hexdigest()
    cached = _cache.get(slot)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    response = client("kms").decrypt(
        KeyId=_key_id(), CiphertextBlob=ciphertext, EncryptionContext=_context(tenant_id, connection_id, purpose)
    )
    plaintext = bytes(response["Plaintext"])
    if len(_cache) > 1000:
        _cache.clear()
    _cache[slot] = (time.monotonic() + CACHE_SECONDS, plaintext)
    return plaintext


def seal_credentials(tenant_id: str, connection_id: str, credentials: dict[str, Any]) -> bytes:
    return encrypt(tenant_id, connection_id, "crm-credentials", json.dumps(credentials).encode())


def open_credentials(tenant_id: str, connection_id: str, ciphertext: bytes) -> dict[str, Any]:
    return json.loads(decrypt(tenant_id, connection_id, "crm-credentials", ciphertext))


def seal_token(tenant_id: str, connection_id: str, token: str) -> bytes:
    return encrypt(tenant_id, connection_id, "crm-access-token", token.encode())


def open_token(tenant_id: str, connection_id: str, ciphertext: bytes) -> str:
    return decrypt(tenant_id, connection_id, "crm-access-token", ciphertext).decode()

"""Signing secrets at rest: KMS Encrypt/Decrypt under the template's `WebhookSecretsKey`, bound to their
subscription by the encryption context (a ciphertext copied to another tenant's or subscription's item does not
decrypt). Plaintexts exist only in memory: returned once to the caller that created or rotated them, and kept
decrypted for five minutes per worker process (one KMS Decrypt per subscription per process per 5 minutes, not
per delivery). Nothing here logs a secret or a ciphertext.
"""

from __future__ import annotations

import hashlib
import time

from conveyor.platform.aws import client
from conveyor.platform.settings import SettingsError, get_settings

CACHE_SECONDS = 300
_cache: dict[str, tuple[float, str]] = {}


def _context(tenant_id: str, subscription_id: str) -> dict[str, str]:
    return {"tenant_id": tenant_id, "subscription_id": subscription_id, "purpose": "webhook-signing-secret"}


def _key_id() -> str:
    key = get_settings().webhook_secrets_key
    if not key:
        raise SettingsError("invalid environment: WEBHOOK_SECRETS_KEY is not set (template.yaml gives it)")
    return key


def encrypt(tenant_id: str, subscription_id: str, secret: str) -> bytes:
    response = client("kms").encrypt(
        KeyId=_key_id(), Plaintext=secret.encode(), EncryptionContext=_context(tenant_id, subscription_id)
    )
    return bytes(response["CiphertextBlob"])


def decrypt(tenant_id: str, subscription_id: str, ciphertext: bytes) -> str:
    slot = hashlib.sha256(b"%s|%s|" % (tenant_id.encode(), subscription_id.encode()) + ciphertext).hexdigest()
    cached = _cache.get(slot)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    response = client("kms").decrypt(
        KeyId=_key_id(), CiphertextBlob=ciphertext, EncryptionContext=_context(tenant_id, subscription_id)
    )
    secret = bytes(response["Plaintext"]).decode()
    if len(_cache) > 1000:
        _cache.clear()
    _cache[slot] = (time.monotonic() + CACHE_SECONDS, secret)
    return secret

"""A function under `sam local invoke` never falls back to real AWS: without an emulator address it refuses to
start, naming the fix; deployed (no AWS_SAM_LOCAL) an empty AWS_ENDPOINT_URL means AWS, as botocore reads it."""

from __future__ import annotations

import pytest

from conveyor.platform.settings import SettingsError, load_settings

BASE = {"JOBS_TABLE": "j", "API_KEYS_TABLE": "k", "QUEUES": "{}", "EMAIL_FROM": "no-reply@example.com"}


def test_sam_local_without_an_endpoint_is_refused_at_cold_start() -> None:
    with pytest.raises(SettingsError, match="--env-vars .local/env.json"):
        load_settings({**BASE, "AWS_SAM_LOCAL": "true", "AWS_ENDPOINT_URL": ""})


def test_sam_local_with_the_emulator_address_starts() -> None:
    settings = load_settings({**BASE, "AWS_SAM_LOCAL": "true", "AWS_ENDPOINT_URL": "http://172.17.0.1:3001"})

    assert settings.endpoint_url == "http://172.17.0.1:3001"


def test_deployed_an_empty_endpoint_means_aws() -> None:
    assert load_settings({**BASE, "AWS_ENDPOINT_URL": ""}).endpoint_url is None

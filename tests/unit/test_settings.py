import pytest

from conveyor.platform.settings import SchedulerSettings, SettingsError, init_settings, load_settings

VALID = {
    "JOBS_TABLE": "jobs",
    "API_KEYS_TABLE": "keys",
    "EMAIL_FROM": "no-reply@example.com",
    "QUEUES": '{"email": "https://sqs.us-east-1.amazonaws.com/123456789012/conveyor-EmailQueue-AbC"}',
}


def test_settings_read_from_the_environment():
    settings = load_settings(VALID)
    assert settings.queue_url("email").endswith("conveyor-EmailQueue-AbC")
    assert settings.completed_retention_days == 7 and settings.sentry_dsn is None
    assert settings.family_for_queue_arn("arn:aws:sqs:us-east-1:123456789012:conveyor-EmailQueue-AbC") == "email"
    assert settings.family_for_queue_arn("arn:aws:sqs:us-east-1:123456789012:other") is None


def test_a_missing_variable_is_named_at_cold_start_by_the_functions_model():
    broken = {k: v for k, v in VALID.items() if k != "JOBS_TABLE"}
    with pytest.raises(SettingsError, match="JOBS_TABLE"):
        init_settings(SchedulerSettings, broken)


def test_reading_a_variable_the_function_was_not_given_names_it():
    settings = load_settings({k: v for k, v in VALID.items() if k != "JOBS_TABLE"})
    assert settings.queue_url("email")  # what it was given still reads
    with pytest.raises(SettingsError, match="JOBS_TABLE"):
        _ = settings.jobs_table


def test_a_half_given_section_fails_whole():
    with pytest.raises(SettingsError, match="JOBS_TABLE"):
        load_settings({**VALID, "JOBS_TABLE": ""})


def test_malformed_queue_map_is_named_in_the_error():
    with pytest.raises(SettingsError, match="QUEUES"):
        load_settings({**VALID, "QUEUES": "email=https://..."})


def test_unknown_family_is_a_clear_error():
    with pytest.raises(SettingsError, match="reports"):
        load_settings(VALID).queue_url("reports")

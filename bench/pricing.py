"""List prices, us-east-1, on-demand, first pricing tier (checked for this benchmark; AWS's pricing pages rule).

Lambda is priced for arm64 at the template's MemorySize, on the handler time measured in-process under moto (so
without real network latency to DynamoDB/SQS/SES: a floor, not a forecast).
"""

from __future__ import annotations

import re
from typing import Any

from bench.world import ROOT

PRICES = {
    "api_gateway_http_per_million": 1.00,  # HTTP API requests, first 300 M / month
    "lambda_requests_per_million": 0.20,
    "lambda_arm64_gb_second": 0.0000133334,  # first 7.5 B GB-s / month
    "dynamodb_wru_per_million": 0.625,  # on-demand write request units (since Nov 2024)
    "dynamodb_rru_per_million": 0.125,  # on-demand read request units
    "dynamodb_storage_gb_month": 0.25,
    "dynamodb_pitr_gb_month": 0.20,  # continuous backups (the template enables PITR)
    "sqs_standard_per_million": 0.40,  # per 64 KB request chunk, after the free tier
    "cloudwatch_logs_ingest_gb": 0.50,
    "xray_traces_per_million": 5.00,
    "ses_per_thousand_emails": 0.10,  # excluded from the budget
    "kms_per_million": 3.00,  # $0.03 per 10,000 requests (webhook signing secrets: Decrypt, cached per process)
}
LAMBDA_PLATFORM_LOG_BYTES = 350  # START, END and REPORT lines Lambda writes per invocation
XRAY_SAMPLED = 0.05  # the default sampling rule past its 1 request/s reservoir (Tracing: Active)
RETENTION_DAYS = 7  # completed jobs' TTL (COMPLETED_RETENTION_DAYS default)
# Core list price per 1M (API Gateway + Lambda + DynamoDB + SQS), issue 19's budgets for the scenarios that have one
BUDGETS = {"email-burst": 3.50, "email-batch": 2.25, "reminders": 5.00}


def memory_gb() -> float:
    found = re.search(r"MemorySize:\s*(\d+)", (ROOT / "template.yaml").read_text())
    return int(found.group(1)) / 1024 if found else 0.25


def cost_per_million(figures: dict[str, Any]) -> dict[str, Any]:
    """Dollars per 1,000,000 jobs, line by line, from the per-job figures of a scenario."""
    n, million = figures["jobs"], 1_000_000
    functions = figures["lambda"]
    invocations = sum(f["per_job"] for f in functions.values())
    gb_seconds = sum(f["billed_ms"] for f in functions.values()) / n / 1000 * memory_gb()
    ddb = figures["dynamodb"]
    stored = max((s["mean"] for s in ddb["item_bytes"].values()), default=0)
    stored_gb_months = stored * million / 1e9 * RETENTION_DAYS / 30.4
    lines = {
        "API Gateway (HTTP API requests)": figures["api_requests_per_job"] * PRICES["api_gateway_http_per_million"],
        "Lambda requests": invocations * PRICES["lambda_requests_per_million"],
        "Lambda duration (arm64)": gb_seconds * million * PRICES["lambda_arm64_gb_second"],
        "DynamoDB writes (WRU)": ddb["wru_per_job"] * PRICES["dynamodb_wru_per_million"],
        "DynamoDB reads (RRU)": ddb["rru_per_job"] * PRICES["dynamodb_rru_per_million"],
        "SQS requests (ours + event source mapping)": (
            figures["sqs"]["ours_per_job"] + figures["sqs"]["esm_billed_per_job"]
        )
        * PRICES["sqs_standard_per_million"],
        "KMS requests": figures.get("kms_per_job", 0) * PRICES["kms_per_million"],
    }
    extras = {
        "CloudWatch Logs ingestion": (figures["log_bytes_per_job"] + invocations * LAMBDA_PLATFORM_LOG_BYTES)
        * million
        / 1e9
        * PRICES["cloudwatch_logs_ingest_gb"],
        "X-Ray traces (5% sampled)": invocations * XRAY_SAMPLED * PRICES["xray_traces_per_million"],
        "DynamoDB storage + PITR (7-day retention)": stored_gb_months
        * (PRICES["dynamodb_storage_gb_month"] + PRICES["dynamodb_pitr_gb_month"]),
    }
    excluded = {
        "SES emails": figures["ses_per_job"] * million / 1000 * PRICES["ses_per_thousand_emails"],
    }
    core = sum(lines.values())
    total = core + sum(extras.values())
    return {
        "lines": {k: round(v, 3) for k, v in lines.items()},
        "extras": {k: round(v, 3) for k, v in extras.items()},
        "excluded": {k: round(v, 2) for k, v in excluded.items()},
        "core": round(core, 3),
        "total": round(total, 3),
        "lambda_gb_seconds_per_job": round(gb_seconds, 6),
    }

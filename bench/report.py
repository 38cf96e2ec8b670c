"""bench/results.md and bench/results.png from bench/results.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import pricing

LOCAL_JOBS_PER_SECOND = 30  # issue 19: `make run` takes a 2,000-job burst at this rate or more on 2 cores


def _ok(passed: bool | None) -> str:
    return "n/a" if passed is None else ("yes" if passed else "**no**")


def _money(value: float) -> str:
    return f"${value:,.2f}"


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(figure, measured, budget, within budget) - the table README's Performance section shows too."""
    rows: list[tuple[str, str, str, str]] = []
    cold = results.get("coldstart")
    if cold:
        worst = max(cold["functions"], key=lambda f: f["ratio"])
        rows.append(
            (
                "Cold start: handler import + init / `import boto3; boto3.client('sqs')`, worst function",
                f"{worst['ratio']}x ({worst['function']}; others "
                + ", ".join(f"{f['ratio']}x" for f in cold["functions"] if f is not worst)
                + ")",
                f"<= {cold['budget']}x",
                _ok(worst["ratio"] <= cold["budget"]),
            )
        )
    calls = results.get("awscalls", {})
    burst, trickle = calls.get("email-burst"), calls.get("email-trickle")
    if burst:
        ddb = burst["dynamodb"]
        rows.append(
            (
                "DynamoDB writes per email job (WRU incl. GSI)",
                f"{ddb['writes_per_job']:g} ({ddb['wru_per_job']:g} WRU, {ddb['gsi_wru_per_job']:g} of them GSI)",
                "<= 3 writes",
                _ok(ddb["writes_per_job"] <= 3),
            )
        )
        sqs = burst["sqs"]
        rows.append(
            (
                "SQS requests per email job, our code: a burst (+ Lambda's event source mapping)",
                f"{sqs['ours_per_job']:g} (+ {sqs['esm_billed_per_job']:g})",
                "<= 0.3",
                _ok(sqs["ours_per_job"] <= 0.3),
            )
        )
        if trickle:
            one = trickle["sqs"]
            rows.append(
                (
                    "SQS requests per email job, our code: one job at a time (+ event source mapping)",
                    f"{one['ours_per_job']:g} (+ {one['esm_billed_per_job']:g})",
                    "<= 0.3",
                    _ok(one["ours_per_job"] <= 0.3),
                )
            )
    priced = (
        ("email-burst", "email jobs, one to a POST /v1/jobs, excl. SES (core; with logs, X-Ray, storage)"),
        ("email-batch", "email jobs, 100 to a POST /v1/jobs/batch, excl. SES (core; all-in)"),
        ("email-batch-keyed", "email jobs, 100 to a batch, each with an idempotency key (core; all-in)"),
        ("reminders", "reminders, excl. SES/SNS (core; all-in)"),
        ("webhooks", "events delivered to one webhook subscription (core; all-in)"),
    )
    for name, what in priced:
        scenario, budget = calls.get(name), pricing.BUDGETS.get(name)
        if scenario and "cost" in scenario:
            cost = scenario["cost"]
            rows.append(
                (
                    f"List price per 1M {what}",
                    f"{_money(cost['core'])}; {_money(cost['total'])}",
                    f"<= {_money(budget)}" if budget else "-",
                    _ok(cost["core"] <= budget) if budget else "n/a",
                )
            )
    api = results.get("api")
    if api:
        for route, r in api["routes"].items():
            rows.append(
                (
                    f"API overhead `{route}`: ours / bare boto3 handler, p95 (p50)",
                    f"{r['ratio_p95']}x ({r['ratio_p50']}x); CPU time {r['ratio_p95_cpu']}x ({r['ratio_p50_cpu']}x)",
                    f"<= {api['budget']}x",
                    _ok(r["ratio_p95"] <= api["budget"]),
                )
            )
    local = results.get("throughput")
    if local and "jobs_per_second" in local:
        rows.append(
            (
                f"Local stack (`make run`): {local['jobs']} jobs enqueue -> completed",
                f"{local['jobs_per_second']} jobs/s",
                f">= {LOCAL_JOBS_PER_SECOND} jobs/s",
                _ok(local["jobs_per_second"] >= LOCAL_JOBS_PER_SECOND),
            )
        )
    elif local:
        rows.append(("Local stack (`make run`) throughput", local.get("pending", "not measured"), "-", "n/a"))
    procs = results.get("processes") or {}
    for name in ("process-overhead", "campaign"):
        s = procs.get(name)
        if s:
            b, cost = s["per_batch_of_100"], s["cost_per_million_records"]
            rows.append(
                (
                    f"Processes ({name}): DynamoDB per batch of 100 records; list price per 1M records (core; all-in)",
                    f"{b['write_requests']} write requests, {b['wru']} WRU; {_money(cost['core'])}; "
                    f"{_money(cost['total'])}",
                    "-",
                    "n/a",
                )
            )
    reports = results.get("reports") or {}
    csv_run, memory = reports.get("csv-100k"), reports.get("memory-1m")
    if csv_run:
        rows.append(
            (
                "Reports: a CSV report, per 100,000 rows (seconds end to end under moto; list price incl. S3)",
                f"{csv_run['seconds_per_100k_rows']} s; ${csv_run['cost_per_100k_rows']['total']:.5f}",
                "-",
                "n/a",
            )
        )
    if memory:
        rows.append(
            (
                f"Reports: peak memory of a {memory['rows']:,}-row CSV export (tracemalloc)",
                f"{memory['peak_traced_mib']} MiB ({memory['parts']} parts, largest {memory['largest_part_bytes']:,} B)",
                f"< {memory['budget_mib']} MiB",
                "yes" if memory["within"] else "NO",
            )
        )
    windows = _windows(results.get("batching") or {})
    if len(windows) > 1:
        (off, first), (on, last) = windows[0], windows[-1]
        rows.append(
            (
                f"Trickle batching: an email job every {results['batching']['interval_s']} s, dispatcher window "
                f"{off} s -> {on} s: list price per 1M jobs (core); dispatch wait p95",
                f"{_money(first['cost']['core'])} -> {_money(last['cost']['core'])}; "
                f"{first['dispatch_wait_s']['p95']} s -> {last['dispatch_wait_s']['p95']} s",
                "-",
                "n/a",
            )
        )
    return rows


def _windows(batching: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """The measured windows of the batching part, shortest first."""
    found = [v for v in batching.values() if isinstance(v, dict) and "window_s" in v]
    return sorted(((v["window_s"], v) for v in found), key=lambda pair: pair[0])


def _batching(batching: dict[str, Any]) -> str:
    rows = [
        (
            f"{window} s",
            str(s["lambda"].get("DispatcherFunction", {}).get("per_job", 0)),
            str(s["lambda"].get("WorkerFunction", {}).get("per_job", 0)),
            str(s["sqs"]["ours_per_job"]),
            str(s["sqs"]["esm_billed_per_job"]),
            _money(s["cost"]["core"]),
            f"{s['dispatch_wait_s']['p50']} s / {s['dispatch_wait_s']['p95']} s / {s['dispatch_wait_s']['max']} s",
        )
        for window, s in _windows(batching)
    ]
    header = (
        "window",
        "dispatcher invocations / job",
        "worker invocations / job",
        "SQS requests / job, ours",
        "SQS requests / job, event source mappings",
        "list price per 1M jobs (core)",
        "dispatch wait p50 / p95 / max",
    )
    return table(rows, header)


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _coldstart(cold: dict[str, Any]) -> str:
    rows = [
        (
            f["function"],
            f"`{f['module']}`",
            f"{f['median_ms']:.0f}",
            f"**{f['ratio']}x**",
            f"{f['cpu_ratio']}x",
            f"{f.get('source_only_ratio', '-')}x",
            f["modules"],
            f"{f.get('beyond_boto3_ms', '-')}",
        )
        for f in cold["functions"]
    ]
    rows.insert(
        0,
        (
            "baseline",
            "`import boto3; boto3.client('sqs')`",
            f"{cold['baseline_ms']:.0f}",
            "1x",
            "1x",
            "-",
            cold["baseline_modules"],
            "-",
        ),
    )
    out = [
        f"Python {cold['python']} (`{cold['interpreter']}`), dependencies for `{cold['platform']}`, "
        f"median of {cold['rounds']} interleaved rounds. Budget <= {cold['budget']}x for every function.",
        "",
        table(
            rows,
            (
                "function",
                "handler",
                "median ms",
                "ratio",
                "CPU-time ratio",
                "ratio without .pyc",
                "modules",
                "import ms beyond boto3's (-X importtime)",
            ),
        ),
        "",
        "Heaviest imports each function's own code pulls in (`-X importtime`, minimum of 3 runs; a module shared "
        "by several is charged to the first that imports it), and where the import time beyond boto3's goes:",
        "",
    ]
    for f in cold["functions"]:
        offenders = ", ".join(f"`{o['module']}` {o['ms']:.0f} ms (from `{o['imported_by']}`)" for o in f["offenders"])
        packages = ", ".join(f"{p['package']} {p['ms']:.0f}" for p in f["packages"])
        out.append(f"- **{f['function']}**: {offenders}. Beyond boto3's imports, by package (ms): {packages}.")
    build = cold.get("build")
    out.append("")
    if build:
        out.append(
            f"`make build` output (.aws-sam/build): {build['with_pyc']} of {build['py_files']} .py files have a "
            f".pyc, {build['unchecked_hash']} of them unchecked-hash."
        )
    else:
        out.append("`make build` output not present when this ran (run `make build` first to have it checked).")
    return "\n".join(out)


def _scenario(name: str, s: dict[str, Any]) -> str:
    ddb, sqs = s["dynamodb"], s["sqs"]
    lam = s["lambda"]
    rows = [
        ("HTTP API requests", f"{s['api_requests_per_job']:g}"),
        ("DynamoDB write requests / items written", f"{ddb['write_requests_per_job']:g} / {ddb['writes_per_job']:g}"),
        ("DynamoDB WRU (of which GSI)", f"{ddb['wru_per_job']:g} ({ddb['gsi_wru_per_job']:g})"),
        ("DynamoDB read requests / RRU", f"{ddb['reads_per_job']:g} / {ddb['rru_per_job']:g}"),
        (
            "SQS requests, our code",
            f"{sqs['ours_per_job']:g} ({', '.join(f'{k} {v}' for k, v in sqs['ours'].items())})",
        ),
        (
            "SQS requests, Lambda's event source mapping (receives with messages + deletes)",
            f"{sqs['esm_billed_per_job']:g}",
        ),
        ("SES / SNS requests", f"{s['ses_per_job']:g} / {s['sns_per_job']:g}"),
    ]
    rows += [
        (
            f"Lambda invocations: {fn}",
            f"{v['per_job']:g} ({v['records_per_invocation']:g} records each, {v['mean_ms']:.1f} ms mean)",
        )
        for fn, v in lam.items()
    ]
    rows.append(("Log bytes written by our code (JSON logs + EMF metrics)", f"{s['log_bytes_per_job']:.0f}"))
    sizes = ", ".join(f"{op} {v['mean']} B mean / {v['max']} B max" for op, v in ddb["item_bytes"].items())
    head = (
        f"**{name}** - {s['jobs']} jobs, {s['elapsed_s']} s, final states {s['states']}. Item sizes after "
        f"writes: {sizes}. DynamoDB operations: {ddb['operations']}."
    )
    return head + "\n\n" + table(rows, ("per job", "measured"))


def _cost(scenarios: dict[str, dict[str, Any]]) -> str:
    names = [n for n, s in scenarios.items() if "cost" in s]
    lines = list(next(iter(scenarios[n]["cost"]["lines"] for n in names)))
    extras = list(next(iter(scenarios[n]["cost"]["extras"] for n in names)))
    rows = [(line, *(_money(scenarios[n]["cost"]["lines"][line]) for n in names)) for line in lines]
    rows.append(
        ("**core total (the budget's scope)**", *(f"**{_money(scenarios[n]['cost']['core'])}**" for n in names))
    )
    rows += [(line, *(_money(scenarios[n]["cost"]["extras"][line]) for n in names)) for line in extras]
    rows.append(("**all-in total**", *(f"**{_money(scenarios[n]['cost']['total'])}**" for n in names)))
    rows += [
        (f"excluded: {line}", *(_money(scenarios[n]["cost"]["excluded"].get(line, 0)) for n in names))
        for line in next(iter(scenarios[n]["cost"]["excluded"] for n in names))
    ]
    return table(rows, ("per 1,000,000 jobs", *names))


def _prices() -> str:
    p = pricing.PRICES
    return "\n".join(
        [
            "Unit prices used (us-east-1 list prices, on-demand, first tier):",
            f"API Gateway HTTP API {_money(p['api_gateway_http_per_million'])}/M requests; "
            f"Lambda {_money(p['lambda_requests_per_million'])}/M requests + ${p['lambda_arm64_gb_second']}/GB-s (arm64), "
            f"{pricing.memory_gb() * 1024:.0f} MB, billed per ms of the measured mean handler time; "
            f"DynamoDB on-demand {_money(p['dynamodb_wru_per_million'])}/M WRU, {_money(p['dynamodb_rru_per_million'])}/M "
            f"RRU, storage {_money(p['dynamodb_storage_gb_month'])} + PITR {_money(p['dynamodb_pitr_gb_month'])}/GB-month; "
            f"DynamoDB Streams reads by Lambda: free; SQS standard {_money(p['sqs_standard_per_million'])}/M requests; "
            f"CloudWatch Logs ingestion {_money(p['cloudwatch_logs_ingest_gb'])}/GB (+{pricing.LAMBDA_PLATFORM_LOG_BYTES} "
            f"bytes of START/END/REPORT lines per invocation); X-Ray {_money(p['xray_traces_per_million'])}/M traces "
            f"({pricing.XRAY_SAMPLED:.0%} sampled); SES {_money(p['ses_per_thousand_emails'])}/1,000 emails "
            "(excluded from the budget, as is SNS SMS).",
        ]
    )


def _api(api: dict[str, Any]) -> str:
    rows = [
        (
            route,
            f"{r['ours_p50_ms']} / {r['ours_p95_ms']}",
            f"{r['bare_p50_ms']} / {r['bare_p95_ms']}",
            f"**{r['ratio_p50']}x / {r['ratio_p95']}x**",
            f"{r['ratio_p50_cpu']}x / {r['ratio_p95_cpu']}x",
        )
        for route, r in api["routes"].items()
    ]
    return (
        f"{api['requests']} requests per route, alternating ours / bare. Budget: p95 <= {api['budget']}x.\n\n"
        + table(
            rows, ("route", "ours p50 / p95 ms", "bare p50 / p95 ms", "ratio p50 / p95", "CPU-time ratio p50 / p95")
        )
    )


def _throughput(local: dict[str, Any]) -> str:
    if "jobs_per_second" not in local:
        return f"Pending: {local.get('pending', 'not measured')}."
    rows = [
        (k.replace("_", " "), v)
        for k, v in local.items()
        if k not in ("measured_at", "quick", "seconds") and not isinstance(v, dict | list)
    ]
    return table(rows, ("", "measured"))


def _cache(cached: dict[str, Any]) -> str:
    rows = [
        (
            str(row["callers"]),
            "on" if row["cached"] else "off",
            str(row["requests"]),
            f"{row['sqs']} ({row['sqs_per_request']}/req)",
            f"{row['dynamodb']} ({row['dynamodb_per_request']}/req)",
            f"{row['lambda']} ({row['lambda_per_request']}/req)",
        )
        for row in cached["rows"]
    ]
    return table(rows, ("callers", "cache", "GET /v1/queues", "SQS requests", "DynamoDB requests", "Lambda API"))


def write(results: dict[str, Any], directory: Path) -> None:
    parts = [
        "# Conveyor benchmark results",
        "",
        "Written by `make bench` (`python -m bench`); every figure below is from the run recorded in "
        "`bench/results.json`. Ratios, not absolute times, carry the budgets: these machines are shared and "
        "noisy.",
        "",
        f"Machine: {results.get('machine', {})}.",
        "",
        "![figures](results.png)",
        "",
        "## Budgets",
        "",
        table(summary_rows(results), ("figure", "measured", "budget", "within")),
        "",
    ]
    cold = results.get("coldstart")
    if cold:
        parts += ["## 1. Cold start", "", f"_Measured {cold['measured_at']}._", "", _coldstart(cold), ""]
    calls = results.get("awscalls")
    if calls:
        scenarios = {k: v for k, v in calls.items() if isinstance(v, dict) and "dynamodb" in v}
        parts += ["## 2. AWS requests and cost per job", "", f"_Measured {calls['measured_at']}._", ""]
        for name, scenario in scenarios.items():
            parts += [_scenario(name, scenario), ""]
        for name, value in calls.items():
            if isinstance(value, dict) and "pending" in value:
                parts += [f"**{name}**: pending - {value['pending']}.", ""]
        if scenarios:
            parts += ["### List-price cost", "", _cost(scenarios), "", _prices(), ""]
    api = results.get("api")
    if api:
        parts += ["## 3. API overhead", "", f"_Measured {api['measured_at']}._", "", _api(api), ""]
    local = results.get("throughput")
    if local:
        parts += [
            "## 4. Local stack throughput",
            "",
            f"_Measured {local.get('measured_at', '-')}._",
            "",
            _throughput(local),
            "",
        ]
    cached = results.get("cache")
    if cached:
        parts += [
            "## 5. Shared cache: requests per `GET /v1/queues`",
            "",
            f"_Measured {cached.get('measured_at', '-')}._ Each caller polls every 5 s for a minute (12 requests), "
            "served by a container of its own; cache off = every request computes (as before the cache).",
            "",
            _cache(cached),
            "",
        ]
    procs = results.get("processes")
    if procs:
        parts += ["## 6. Processes", "", f"_Measured {procs.get('measured_at', '-')}._", ""]
        for name in ("process-overhead", "campaign"):
            if name in procs:
                parts += [_scenario(name, procs[name]), ""]
    reports = results.get("reports")
    if reports:
        parts += ["## 7. Reports", "", f"_Measured {reports.get('measured_at', '-')}._ See bench/reports.py.", ""]
        parts += ["```json", json.dumps({k: v for k, v in reports.items() if k != "measured_at"}, indent=1), "```", ""]
    batching = results.get("batching")
    if batching:
        parts += [
            "## 8. Trickle batching (the dispatcher's batching window)",
            "",
            f"_Measured {batching.get('measured_at', '-')}._ {batching['jobs']} email jobs per window, one every "
            f"{batching['interval_s']} s (bench/batching.py); `DispatchBatchingWindowSeconds` in template.yaml.",
            "",
            _batching(batching),
            "",
        ]
    notes = directory / "NOTES.md"
    if notes.exists():
        parts += [notes.read_text().strip(), ""]
    (directory / "results.md").write_text("\n".join(parts))
    chart(results, directory / "results.png")
    _readme(results, directory.parent / "README.md")


def _readme(results: dict[str, Any], readme: Path) -> None:
    """Refresh the table between README's bench-table markers (its Performance section), nothing else."""
    start, end = "<!-- bench-table -->", "<!-- /bench-table -->"
    if not readme.exists():
        return
    text = readme.read_text()
    if start not in text or end not in text:
        return
    dates = sorted({v["measured_at"] for v in results.values() if isinstance(v, dict) and "measured_at" in v})
    block = (
        f"{start}\n_From the run committed in bench/results.md ({', '.join(dates)}; {results['machine']['cpus']} "
        f"shared cores)._\n\n{table(summary_rows(results), ('figure', 'measured', 'budget', 'within'))}\n{end}"
    )
    head, rest = text.split(start, 1)
    readme.write_text(head + block + rest.split(end, 1)[1])


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    cold, calls, api = results.get("coldstart"), results.get("awscalls", {}), results.get("api")
    ax = axes[0]
    if cold:
        names = [f["function"].replace("Function", "") for f in cold["functions"]]
        ax.bar(names, [f["ratio"] for f in cold["functions"]], color="#4c72b0", label="with .pyc (shipped)")
        ax.scatter(
            names,
            [f.get("source_only_ratio", 0) for f in cold["functions"]],
            color="#c44e52",
            marker="x",
            label="without .pyc",
            zorder=3,
        )
        ax.axhline(cold["budget"], color="black", linestyle="--", linewidth=1, label=f"budget {cold['budget']}x")
        ax.set_ylabel("x  import boto3 + sqs client")
        ax.legend(fontsize=8)
    ax.set_title("Cold start (handler import + init)")
    ax.tick_params(axis="x", labelrotation=20)

    ax = axes[1]
    scenarios = {k: v for k, v in calls.items() if isinstance(v, dict) and "cost" in v}
    if scenarios:
        bottom = [0.0] * len(scenarios)
        labels = list(next(iter(scenarios.values()))["cost"]["lines"]) + list(
            next(iter(scenarios.values()))["cost"]["extras"]
        )
        for label in labels:
            values = [{**s["cost"]["lines"], **s["cost"]["extras"]}.get(label, 0) for s in scenarios.values()]
            ax.bar(list(scenarios), values, bottom=bottom, label=label.split(" (")[0])
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        single = pricing.BUDGETS["email-burst"]
        ax.axhline(single, color="black", linestyle="--", linewidth=1, label=f"budget (one email job) ${single:.2f}")
        ax.set_ylabel("$ per 1M jobs (excl. SES/SNS)")
        ax.legend(fontsize=7)
    ax.set_title("List-price cost per 1M jobs")

    ax = axes[2]
    if api:
        routes = list(api["routes"])
        x = range(len(routes))
        ax.bar([i - 0.2 for i in x], [api["routes"][r]["ratio_p50"] for r in routes], width=0.4, label="p50")
        ax.bar([i + 0.2 for i in x], [api["routes"][r]["ratio_p95"] for r in routes], width=0.4, label="p95")
        ax.set_xticks(list(x), [r.replace(" /v1", "\n/v1") for r in routes])
        ax.axhline(api["budget"], color="black", linestyle="--", linewidth=1, label=f"budget {api['budget']}x")
        ax.set_ylabel("x  bare boto3 handler")
        ax.legend(fontsize=8)
    ax.set_title("API overhead (moto)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

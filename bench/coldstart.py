"""Cold start: every function in template.yaml, imported in a fresh interpreter the way Lambda loads it.

What is measured, per function: the wall time of `import <handler module>` (which runs its module-level init:
settings, Powertools, Sentry...) in a brand-new interpreter, divided by the time of
`import boto3; boto3.client("sqs")` in another brand-new interpreter of the same round. Rounds are interleaved
(baseline and every function once per round, the order rotating) and the figure is the median of the per-round
ratios, so a noisy shared machine moves numerator and denominator together.

The environment looks like the deployed function, not like the dev venv (whose aws-sam-cli extras such as awscrt
and pyOpenSSL change what botocore imports):
  - the interpreter is the template's Runtime (python3.13) if it is installed, else the running one;
  - the layer's requirements.txt is installed with `pip install --target`, for this machine's platform
    (the real build is arm64, which cannot load here), into a cache under .bench/;
  - the layer's content and each function's CodeUri are copied under .bench/ and compiled with
    `compileall --invalidation-mode unchecked-hash`, as the build ships them;
  - the child runs with `-I -S -B` (isolated, no site-packages, no bytecode writes) and sys.path set to exactly
    [function code, layer content, layer dependencies]: nothing from the dev venv is importable;
  - its environment is the function's resolved template environment plus the variables Lambda sets
    (LAMBDA_TASK_ROOT, AWS_LAMBDA_FUNCTION_NAME, AWS_EXECUTION_ENV, region, credentials, X-Ray daemon...),
    so libraries that behave differently inside Lambda (Powertools Tracer) do so here too.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.world import say

BUDGET = 1.4  # GUIDE.md section 4, issue 19: every function <= 1.4x
BASELINE = ":boto3-sqs"
CHILD = r"""
import json, sys, time
sys.path[:0] = json.loads(sys.argv[1])
target = sys.argv[2]
start, cpu = time.perf_counter(), time.process_time()
if target == ":boto3-sqs":
    import boto3
    boto3.client("sqs")
else:
    __import__(target)
elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({"ms": elapsed * 1000, "cpu_ms": cpu * 1000, "modules": len(sys.modules)}))
"""


@dataclass
class Target:
    name: str
    module: str
    paths: list[str]
    env: dict[str, str]
    samples: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    modules: int = 0


def run(root: Path, work: Path, *, rounds: int = 11, log: Any = say) -> dict[str, Any]:
    from bench.world import template_functions

    python, version = _interpreter(root)
    log(f"cold start: {python} (Python {version}), {rounds} interleaved rounds")
    specs = template_functions(root)
    targets = _prepare(root, work, python, version, specs, log)

    for round_no in range(rounds):
        order = targets[round_no % len(targets) :] + targets[: round_no % len(targets)]
        for target in order:
            result = _child(python, target)
            target.samples.append(result["ms"])
            target.cpu.append(result["cpu_ms"])
            target.modules = result["modules"]
    baseline = targets[0]
    boto3_modules = {e.name for e in _importtime(python, baseline, runs=1)}
    functions = []
    for target in targets[1:]:
        ratios = [t / b for t, b in zip(target.samples, baseline.samples, strict=True)]
        cpu_ratios = [t / b for t, b in zip(target.cpu, baseline.cpu, strict=True)]
        functions.append(
            {
                "function": target.name,
                "module": target.module,
                "median_ms": round(statistics.median(target.samples), 1),
                "ratio": round(statistics.median(ratios), 2),
                "cpu_ratio": round(statistics.median(cpu_ratios), 2),
                "ratios": [round(r, 2) for r in ratios],
                "modules": target.modules,
            }
        )
        entries = _importtime(python, target)
        beyond = [e for e in entries if e.name not in boto3_modules]
        functions[-1].update(
            offenders=_offenders(entries, target.module),
            packages=_by_package(beyond),
            beyond_boto3_ms=round(sum(e.self_us for e in beyond) / 1000, 1),
        )
        log(
            f"  {target.name}: {functions[-1]['median_ms']} ms, {functions[-1]['ratio']}x"
            f" (CPU time {functions[-1]['cpu_ratio']}x)"
        )
    log(f"  baseline boto3+sqs: {statistics.median(baseline.samples):.1f} ms")
    # What a build without .pyc costs: the same imports compiled from source at every cold start, against the
    # compiled baseline (3 rounds).
    plain = _prepare(root, work, python, version, specs, log, compiled=False)[1:]
    compiled_baseline = []
    for _ in range(3):
        compiled_baseline.append(_child(python, baseline)["ms"])
        for target in plain:
            target.samples.append(_child(python, target)["ms"])
    for target, figures in zip(plain, functions, strict=True):
        figures["source_only_ratio"] = round(
            statistics.median([t / b for t, b in zip(target.samples, compiled_baseline, strict=True)]), 2
        )
    log("  without .pyc: " + ", ".join(f"{f['function']} {f['source_only_ratio']}x" for f in functions))
    return {
        "python": version,
        "interpreter": python,
        "platform": _platform_tag(),
        "rounds": rounds,
        "budget": BUDGET,
        "baseline_ms": round(statistics.median(baseline.samples), 1),
        "baseline_modules": baseline.modules,
        "baseline_cpu_ms": round(statistics.median(baseline.cpu), 1),
        "functions": functions,
        "build": build_pyc_report(root),
    }


# --- the environment -------------------------------------------------------------------------------------
def _interpreter(root: Path) -> tuple[str, str]:
    """The template's Runtime (e.g. python3.13) if installed, else this interpreter."""
    runtime = re.search(r"Runtime:\s*python(\d+\.\d+)", (root / "template.yaml").read_text())
    candidates = [os.environ.get("BENCH_PYTHON")]
    if runtime:
        candidates.append(shutil.which(f"python{runtime.group(1)}"))
    candidates.append(sys.executable)
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.executable, '%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0:
            executable, version = probe.stdout.split()
            return executable, version
    raise RuntimeError("no usable Python interpreter")


def _platform_tag() -> str:
    return {"x86_64": "manylinux2014_x86_64", "aarch64": "manylinux2014_aarch64"}.get(
        platform.machine(), "manylinux2014_x86_64"
    )


def _deps(work: Path, requirements: Path, version: str, python: str, *, compiled: bool) -> Path:
    """The layer's dependencies, installed for this platform and the target Python (as sources, and a compiled
    copy); cached by the requirements' content."""
    digest = hashlib.sha256(requirements.read_bytes() + version.encode() + _platform_tag().encode()).hexdigest()[:12]
    source = work / "coldstart" / f"deps-py{version}-{_platform_tag()}-{digest}"
    if not (source / ".complete").exists():
        shutil.rmtree(source, ignore_errors=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-compile",
                "--target",
                str(source),
                "--platform",
                _platform_tag(),
                "--implementation",
                "cp",
                "--python-version",
                version,
                "--only-binary=:all:",
                "-r",
                str(requirements),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        (source / ".complete").touch()
    if not compiled:
        return source
    target = source.with_name(source.name + "-pyc")
    if not (target / ".complete").exists():
        _copy(source, target)
        _compile(python, target)
        (target / ".complete").touch()
    return target


def _compile(python: str, directory: Path) -> None:
    subprocess.run(
        [python, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", str(directory)],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _copy(source: Path, dest: Path) -> Path:
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def _prepare(
    root: Path, work: Path, python: str, version: str, specs: list[Any], log: Any, *, compiled: bool = True
) -> list[Target]:
    base = work / "coldstart" / ("pyc" if compiled else "source-only")
    layers: dict[Path, list[str]] = {}
    for spec in specs:
        for layer in spec.layer_dirs:
            if layer in layers:
                continue
            paths = [str(_copy(layer, base / "opt" / layer.name))]
            requirements = layer / "requirements.txt"
            if requirements.exists():
                log(f"  layer {layer.name}: pip install --target (py{version}, {_platform_tag()})")
                paths.append(str(_deps(work, requirements, version, python, compiled=compiled)))
            if compiled:
                _compile(python, Path(paths[0]))
            layers[layer] = paths
    home = base / "home"
    home.mkdir(parents=True, exist_ok=True)
    lambda_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "HOME": str(home),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "ASIABENCHBENCHBENCH0",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{version}",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
        "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "_AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129",
        "_AWS_XRAY_DAEMON_PORT": "2000",
    }
    dependencies = next(iter(layers.values()), [])
    targets = [Target("boto3 + sqs client", BASELINE, dependencies[1:] or dependencies, dict(lambda_env))]
    for spec in specs:
        code = _copy(spec.code_dir, base / "task" / spec.logical_id)
        if compiled:
            _compile(python, code)
        env = {
            **lambda_env,
            **spec.environment,
            "LAMBDA_TASK_ROOT": str(code),
            "_HANDLER": spec.handler,
            "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.logical_id}",
        }
        paths = [str(code)] + [p for layer in spec.layer_dirs for p in layers[layer]]
        targets.append(Target(spec.logical_id, spec.handler.rsplit(".", 1)[0], paths, env))
    return targets


def _child(python: str, target: Target, *extra: str) -> dict[str, Any]:
    done = subprocess.run(
        [python, "-I", "-S", "-B", *extra, "-c", CHILD, json.dumps(target.paths), target.module],
        env=target.env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{target.name}: import failed\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["stderr"] = done.stderr
    return result


# --- what costs: -X importtime ---------------------------------------------------------------------------
@dataclass
class _Import:
    name: str
    self_us: int
    cumulative_us: int
    depth: int
    parent: str | None = None


def _importtime(python: str, target: Target, runs: int = 3) -> list[_Import]:
    """The import tree of `-X importtime`; each module's times are the minimum over a few runs (less noise)."""
    best: dict[str, tuple[int, int]] = {}
    entries: list[_Import] = []
    for run_no in range(runs):
        stderr = _child(python, target, "-X", "importtime")["stderr"]
        for line in stderr.splitlines():
            match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
            if not match:
                continue
            name, self_us, cumulative_us = match.group(4), int(match.group(1)), int(match.group(2))
            if run_no == 0:
                entries.append(_Import(name, self_us, cumulative_us, len(match.group(3)) // 2))
            seen = best.get(name, (self_us, cumulative_us))
            best[name] = (min(seen[0], self_us), min(seen[1], cumulative_us))
    for entry in entries:
        entry.self_us, entry.cumulative_us = best[entry.name]
    # importtime prints children before their parent: a line's parent is the next line one level up.
    for i, entry in enumerate(entries):
        entry.parent = next((e.name for e in entries[i + 1 :] if e.depth < entry.depth), None)
    return entries


def _first_party(name: str, handler: str) -> bool:
    return name == handler or name.split(".")[0] == "conveyor"


def _offenders(entries: list[_Import], handler: str, top: int = 6) -> list[dict[str, Any]]:
    """The heaviest third-party imports, each with the first-party module whose import statement pulled it in
    (a dependency shared by several modules is charged to the first one that imports it)."""
    found = [e for e in entries if e.parent and _first_party(e.parent, handler) and not _first_party(e.name, handler)]
    found.sort(key=lambda e: -e.cumulative_us)
    return [{"module": e.name, "ms": round(e.cumulative_us / 1000, 1), "imported_by": e.parent} for e in found[:top]]


def _by_package(entries: list[_Import], top: int = 8) -> list[dict[str, Any]]:
    """Self import time summed per top-level package (where the time goes)."""
    totals: dict[str, int] = {}
    for entry in entries:
        package = entry.name.split(".")[0]
        totals[package] = totals.get(package, 0) + entry.self_us
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])[:top]
    return [{"package": name, "ms": round(us / 1000, 1)} for name, us in ranked]


# --- what the build ships ------------------------------------------------------------------------------
def build_pyc_report(root: Path) -> dict[str, Any] | None:
    """Whether `sam build` output (.aws-sam/build) holds unchecked-hash .pyc for every .py (None if not built)."""
    build = root / ".aws-sam" / "build"
    if not build.exists():
        return None
    sources = pycs = unchecked = 0
    for path in build.rglob("*.py"):
        sources += 1
        candidates = list((path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"))
        if candidates:
            pycs += 1
            flags = int.from_bytes(candidates[0].read_bytes()[4:8], "little")
            unchecked += flags == 0b01  # hash-based, check_source off
    return {"py_files": sources, "with_pyc": pycs, "unchecked_hash": unchecked}

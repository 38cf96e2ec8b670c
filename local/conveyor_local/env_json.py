"""`.local/env.json`: every function's environment in `sam local invoke --env-vars` format, aimed at the local
emulator as a Docker container reaches it.

Why it has to be this way (SAM CLI 1.148, checked):
- `--env-vars` only sets variables the template declares; template.yaml declares AWS_ENDPOINT_URL (empty when
  deployed), and env.json gives it the emulator's address, so every AWS client in the container goes there.
- SAM keeps its containers on Docker's default bridge whatever `--docker-network` says, so 127.0.0.1 in a container
  is the container itself: the emulator must listen where the bridge reaches it (`--emulator-host 0.0.0.0`), and
  env.json names the host's address on that bridge.
Invariant: no value in env.json leaves an AWS endpoint unset — every function section carries AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import socket
import struct
import subprocess
from pathlib import Path
from typing import Any

from conveyor_local.template import FunctionSpec

FILE = "env.json"
DEFAULT_BRIDGE = "172.17.0.1"  # Docker's default bridge gateway when nothing else can be read
_SIOCGIFADDR = 0x8915


def is_wildcard(host: str) -> bool:
    return host in ("", "0.0.0.0", "::")  # noqa: S104 - a comparison, not a bind


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bridge_address() -> str:
    """The host's address on Docker's default bridge: docker0's IPv4 address, else the gateway
    `docker network inspect bridge` reports, else 172.17.0.1."""
    return _interface_ipv4("docker0") or _docker_bridge_gateway() or DEFAULT_BRIDGE


def _interface_ipv4(name: str) -> str | None:
    try:
        import fcntl
    except ImportError:  # not a Unix host
        return None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            packed = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, struct.pack("256s", name[:15].encode()))
        except OSError:  # no such interface (no Docker engine on this host), or it has no IPv4 address
            return None
    return socket.inet_ntoa(packed[20:24])


def _docker_bridge_gateway() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    try:
        out = subprocess.run(  # noqa: S603 - a fixed command
            [docker, "network", "inspect", "bridge", "--format", "{{range .IPAM.Config}}{{.Gateway}} {{end}}"],
            capture_output=True,
            text=True,
            timeout=3,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):  # no engine running, no permission, too slow
        return None
    return next((a for a in out if "." in a), None)


def container_endpoint(emulator_host: str, port: int) -> str:
    """Where a container on Docker's bridge finds an emulator listening on emulator_host:port.

    A wildcard or loopback listener is addressed by the bridge gateway (a loopback one does not answer there:
    `reachable_from_containers` says so); a specific address is used as it is."""
    host = bridge_address() if is_wildcard(emulator_host) or is_loopback(emulator_host) else emulator_host
    return f"http://{host}:{port}"


def reachable_from_containers(emulator_host: str) -> bool:
    return not is_loopback(emulator_host)


def build(functions: dict[str, FunctionSpec], local_endpoint: str, for_containers: str) -> dict[str, Any]:
    """Each function's full environment (SAM's standard format: logical id -> variables), with every mention of the
    emulator as this process reaches it (table ARNs, queue URLs, AWS_ENDPOINT_URL) rewritten to the container's view.

    `Parameters` (applied by SAM to every function) carries AWS_ENDPOINT_URL too, so a function added to the template
    after this file was written still cannot default to real AWS."""
    env: dict[str, Any] = {}
    for logical_id, spec in sorted(functions.items()):
        variables = {name: value.replace(local_endpoint, for_containers) for name, value in spec.environment.items()}
        variables["AWS_ENDPOINT_URL"] = for_containers
        env[logical_id] = variables
    env["Parameters"] = {"AWS_ENDPOINT_URL": for_containers}
    return env


def write(path: Path, functions: dict[str, FunctionSpec], local_endpoint: str, for_containers: str) -> Path:
    path.write_text(json.dumps(build(functions, local_endpoint, for_containers), indent=2) + "\n")
    return path

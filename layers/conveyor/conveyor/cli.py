"""`conveyor` command line: manage API keys (`conveyor keys create|revoke`); `conveyor demo` tours a local stack.

The keys table is found from --table, else API_KEYS_TABLE, else the ApiKeysTableName output of --stack.
"""

from __future__ import annotations

import argparse
import os
import sys

from conveyor.platform.errors import ConveyorError


def _table(args: argparse.Namespace) -> str:
    if args.table:
        return args.table
    if os.environ.get("API_KEYS_TABLE"):
        return os.environ["API_KEYS_TABLE"]
    if args.stack:
        from conveyor.platform.aws import client

        outputs = client("cloudformation").describe_stacks(StackName=args.stack)["Stacks"][0].get("Outputs", [])
        for output in outputs:
            if output["OutputKey"] == "ApiKeysTableName":
                return output["OutputValue"]
    raise SystemExit("conveyor: name the keys table with --table, API_KEYS_TABLE or --stack")


def _create(args: argparse.Namespace) -> None:
    from conveyor.platform.auth import keys

    if args.expires_in_days is not None and args.expires_in_days < 1:
        raise ConveyorError(
            f"--expires-in-days must be at least 1 (got {args.expires_in_days}); omit it for a key that does not expire"
        )
    key, record = keys.create(
        args.tenant,
        {s.strip() for s in args.scopes.split(",") if s.strip()},
        name=args.name,
        expires_in_days=args.expires_in_days,
        table=_table(args),
    )
    print(key)
    print(
        f"key id {record.key_id} for tenant {record.tenant_id}, scopes {','.join(sorted(record.scopes))}"
        " (the key is shown only this once)",
        file=sys.stderr,
    )


def _revoke(args: argparse.Namespace) -> None:
    from conveyor.platform.auth import keys

    record = keys.revoke(args.key, table=_table(args))
    print(f"revoked key {record.key_id} of tenant {record.tenant_id}")


def _demo(args: argparse.Namespace) -> int:
    try:  # development only: the local stack's package is installed by `make install`, never shipped in the layer
        from conveyor_local.demo import run
    except ImportError:
        raise SystemExit("conveyor demo needs the development install (make install)") from None
    return run(args.url, args.key, timeout=args.timeout)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="conveyor", description=__doc__.splitlines()[0])
    commands = root.add_subparsers(dest="command", required=True)
    keys_cmd = commands.add_parser("keys", help="manage API keys").add_subparsers(dest="action", required=True)

    def with_table(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--table", help="the API keys table name")
        p.add_argument("--stack", help="read the table name from this CloudFormation stack's outputs")
        return p

    create = with_table(keys_cmd.add_parser("create", help="mint a key (printed once)"))
    create.add_argument("--tenant", required=True)
    create.add_argument("--scopes", required=True, help="comma-separated: jobs:read,jobs:write,admin,platform")
    create.add_argument("--name", help="a label for the key")
    create.add_argument("--expires-in-days", type=int)
    create.set_defaults(run=_create)

    revoke = with_table(keys_cmd.add_parser("revoke", help="revoke a key by its id or the key itself"))
    revoke.add_argument("key")
    revoke.set_defaults(run=_revoke)

    demo = commands.add_parser("demo", help="enqueue sample jobs on a running local stack (make run) and watch them")
    demo.add_argument("--url", help="the stack's URL (default: CONVEYOR_URL, else .local/stack.json, else :3000)")
    demo.add_argument("--key", help="an API key (default: CONVEYOR_API_KEY, else the one in .local/stack.json)")
    demo.add_argument("--timeout", type=float, default=90, help="give up after this many seconds")
    demo.set_defaults(run=_demo)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except ConveyorError as exc:
        print(f"conveyor: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

"""template.yaml as the truth: parse it, resolve intrinsics, create its tables and queues, give functions their env.

Nothing here names a particular function, queue or table; everything is read from the template.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import re
import secrets
import string
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from samcli.yamlhelper import yaml_parse as load_cfn_yaml

ACCOUNT = "123456789012"


@lru_cache(maxsize=8)
def _parsed_once(path: Path, mtime_ns: int) -> Any:
    return load_cfn_yaml(path.read_text())


def _parsed(path: Path, mtime_ns: int) -> Any:
    """The parsed template; parsing is the slow part of building a stack, so it happens once per file version."""
    return copy.deepcopy(_parsed_once(path, mtime_ns))


SUPPORTED = (
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::KMS::Key",
    "AWS::SecretsManager::Secret",
    "AWS::S3::Bucket",
)
# Resource types the local stack plays itself (functions, layers, the HTTP API) or that have no local effect.
EMULATED = (
    "AWS::Serverless::Function",
    "AWS::Serverless::LayerVersion",
    "AWS::Serverless::HttpApi",
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
    "AWS::Lambda::Permission",
    "AWS::Logs::LogGroup",
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::Dashboard",
    "AWS::KMS::Key",  # nothing is encrypted locally; its only user, the alarm topic, is not created either
    "AWS::S3::BucketPolicy",  # TLS-only: the local emulator speaks plain HTTP
)
log = logging.getLogger("conveyor_local")


@dataclass
class FunctionSpec:
    logical_id: str
    handler: str  # "module.function"
    code_dir: Path
    timeout: int
    memory: int
    layer_dirs: list[Path]
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)


class Template:
    def __init__(
        self,
        path: str | Path = "template.yaml",
        *,
        parameters: dict[str, str] | None = None,
        region: str = "us-east-1",
        stack_name: str = "conveyor",
    ) -> None:
        self.path = Path(path).resolve()
        self.root = self.path.parent
        self.doc = _parsed(self.path, self.path.stat().st_mtime_ns)
        self.region, self.stack_name = region, stack_name
        self.parameters = {name: str(spec.get("Default", "")) for name, spec in self.doc.get("Parameters", {}).items()}
        self.parameters.update(parameters or {})
        self.resources: dict[str, dict[str, Any]] = dict(self.doc.get("Resources", {}))
        self.physical: dict[str, str] = {}  # logical id -> Ref value (table name, queue URL...)
        self.attributes: dict[str, dict[str, str]] = {}  # logical id -> GetAtt values
        self.mappings: dict[tuple[str, str], str] = {}  # (function logical id, event name) -> mapping UUID

    # --- intrinsics --------------------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            if len(value) == 1:
                ((key, arg),) = value.items()
                if key == "Ref":
                    return self._ref(arg)
                if key == "Fn::GetAtt":
                    name, attr = arg.split(".", 1) if isinstance(arg, str) else arg
                    return self.attributes.get(name, {}).get(attr, f"{self.stack_name}-{name}-{attr}")  # not emulated
                if key == "Fn::Sub":
                    return self._sub(arg)
                if key == "Fn::Join":
                    sep, items = arg
                    return sep.join(str(self.resolve(i)) for i in items)
                if key == "Fn::Select":
                    index, items = arg
                    return self.resolve(items)[int(self.resolve(index))]
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": self.stack_name,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::Partition": "aws",
            "AWS::NoValue": "",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical:
            return self.physical[name]
        return f"{self.stack_name}-{name}"  # a resource the local stack does not create (e.g. an API or a topic)

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def one(match: re.Match[str]) -> str:
            expr = match.group(1)
            if expr in variables:
                return str(self.resolve(variables[expr]))
            if "." in expr and not expr.startswith("AWS::"):
                name, attr = expr.split(".", 1)
                return str(self.attributes.get(name, {}).get(attr, f"{self.stack_name}-{name}-{attr}"))
            return str(self._ref(expr))

        return re.sub(r"\$\{([^}!]+)\}", one, text)

    # --- resources ---------------------------------------------------------------------------------
    def of_type(self, *types: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v.get("Type") in types}

    def provision(self, clients: Any) -> None:
        """Create every supported resource, dependencies first. `clients(service)` returns a boto3 client."""
        pending = dict(self.of_type(*SUPPORTED))
        while pending:
            ready = [k for k, v in pending.items() if not (_references(v.get("Properties", {})) & set(pending))]
            if not ready:
                raise ValueError(f"circular references between {sorted(pending)}")
            for logical_id in ready:
                spec = pending.pop(logical_id)
                creator = {
                    "AWS::DynamoDB::Table": self._create_table,
                    "AWS::SQS::Queue": self._create_queue,
                    "AWS::KMS::Key": self._create_key,
                    "AWS::SecretsManager::Secret": self._create_secret,
                    "AWS::S3::Bucket": self._create_bucket,
                }
                creator[spec["Type"]](logical_id, self.resolve(spec.get("Properties", {})), clients)

    def register_functions(self, clients: Any) -> None:
        """Register every function and its SQS/DynamoDB event source mappings with the emulator's Lambda API,
        so code that manages mappings (pause/resume) finds them. The code registered is a stub: functions run
        in process (lambdas.py); the mappings' State is what the local pollers obey."""
        lam = clients("lambda")
        role = _local_role(clients("iam"))
        for logical_id, spec in self.of_type("AWS::Serverless::Function").items():
            name = f"{self.stack_name}-{logical_id}"
            props = {**self.doc.get("Globals", {}).get("Function", {}), **spec.get("Properties", {})}
            try:
                arn = lam.create_function(
                    FunctionName=name,
                    Role=role,
                    Runtime=str(props.get("Runtime", "python3.13")),
                    Handler=str(props["Handler"]),
                    Code={"ZipFile": _STUB_ZIP},
                    Timeout=int(props.get("Timeout", 3)),
                )["FunctionArn"]
            except lam.exceptions.ResourceConflictException:  # an external emulator kept it from an earlier run
                arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
            self.physical[logical_id] = name
            self.attributes[logical_id] = {"Arn": arn}
            kept = {
                m["EventSourceArn"]: m["UUID"]
                for m in lam.list_event_source_mappings(FunctionName=name).get("EventSourceMappings", [])
            }
            for event_name, event in (props.get("Events") or {}).items():
                if event.get("Type") not in ("SQS", "DynamoDB"):
                    continue
                config = event.get("Properties", {})
                source = self.resolve(config["Queue"] if event["Type"] == "SQS" else config["Stream"])
                if source in kept:
                    self.mappings[(logical_id, event_name)] = kept[source]
                    continue
                args: dict[str, Any] = {
                    "FunctionName": name,
                    "EventSourceArn": source,
                    "Enabled": bool(config.get("Enabled", True)),
                }
                for key in ("StartingPosition", "FunctionResponseTypes", "BisectBatchOnFunctionError"):
                    if key in config:
                        args[key] = self.resolve(config[key])
                for key in ("BatchSize", "MaximumBatchingWindowInSeconds", "MaximumRetryAttempts"):
                    if key in config:
                        args[key] = int(self.resolve(config[key]))  # a parameter's value is text
                self.mappings[(logical_id, event_name)] = lam.create_event_source_mapping(**args)["UUID"]

    def _create_table(self, logical_id: str, props: dict[str, Any], clients: Any) -> None:
        ddb = clients("dynamodb")
        name = props.get("TableName") or f"{self.stack_name}-{logical_id}"
        args: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if props.get(key):
                args[key] = props[key]
        if props.get("StreamSpecification"):
            args["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        try:
            ddb.create_table(**args)
            created = True
        except ddb.exceptions.ResourceInUseException:  # an external emulator kept it from an earlier run
            created = False
            log.info("table %s already exists; reusing it", name)
        table = ddb.describe_table(TableName=name)["Table"]
        ttl = props.get("TimeToLiveSpecification")
        if created and ttl and ttl.get("Enabled"):
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        self.physical[logical_id] = name
        self.attributes[logical_id] = {"Arn": table["TableArn"], "StreamArn": table.get("LatestStreamArn", "")}

    def _create_key(self, logical_id: str, props: dict[str, Any], clients: Any) -> None:
        """A symmetric KMS key (the key policy is not emulated; IAM is not enforced locally anyway), found again by
        an alias when an external emulator kept it from an earlier run (its ciphertexts must still decrypt)."""
        kms = clients("kms")
        alias = f"alias/{self.stack_name}-{logical_id}"
        try:
            key = kms.describe_key(KeyId=alias)["KeyMetadata"]
        except kms.exceptions.NotFoundException:
            key = kms.create_key(Description=str(props.get("Description", logical_id)))["KeyMetadata"]
            kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
        self.physical[logical_id] = key["KeyId"]
        self.attributes[logical_id] = {"Arn": key["Arn"], "KeyId": key["KeyId"]}

    def _create_queue(self, logical_id: str, props: dict[str, Any], clients: Any) -> None:
        sqs = clients("sqs")
        name = props.get("QueueName") or f"{self.stack_name}-{logical_id}"
        attributes: dict[str, str] = {}
        for key in (
            "VisibilityTimeout",
            "MessageRetentionPeriod",
            "DelaySeconds",
            "ReceiveMessageWaitTimeSeconds",
            "MaximumMessageSize",
            "SqsManagedSseEnabled",
            "FifoQueue",
            "ContentBasedDeduplication",
        ):
            if key in props:
                attributes[key] = str(props[key]).lower() if isinstance(props[key], bool) else str(props[key])
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        try:
            url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        except sqs.exceptions.QueueNameExists:  # kept by an external emulator with other settings: apply ours
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            sqs.set_queue_attributes(
                QueueUrl=url, Attributes={k: v for k, v in attributes.items() if k not in ("FifoQueue",)}
            )
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.physical[logical_id] = url
        self.attributes[logical_id] = {"Arn": arn, "QueueName": name, "QueueUrl": url}

    def _create_secret(self, logical_id: str, props: dict[str, Any], clients: Any) -> None:
        """A secret as CloudFormation makes it: its SecretString, or one generated (GenerateSecretString's
        length; letters and digits only, which every ExcludeCharacters/ExcludePunctuation choice allows)."""
        sm = clients("secretsmanager")
        name = props.get("Name") or f"{self.stack_name}-{logical_id}"
        generate = props.get("GenerateSecretString")
        value = props.get("SecretString")
        if value is None:
            length = int((generate or {}).get("PasswordLength", 32))
            alphabet = string.ascii_letters + string.digits
            value = "".join(secrets.choice(alphabet) for _ in range(length))
        try:
            arn = sm.create_secret(Name=name, SecretString=value)["ARN"]
        except sm.exceptions.ResourceExistsException:  # kept by an external emulator: a fresh value, as a new stack
            arn = sm.put_secret_value(SecretId=name, SecretString=value)["ARN"]
        self.physical[logical_id] = arn  # Ref of a secret is its ARN
        self.attributes[logical_id] = {"Id": arn}

    def _create_bucket(self, logical_id: str, props: dict[str, Any], clients: Any) -> None:
        """A bucket with the template's encryption, public access block and lifecycle rules (the emulator keeps
        them; it does not run lifecycle expiry)."""
        s3 = clients("s3")
        name = props.get("BucketName") or f"{self.stack_name}-{logical_id}".lower()
        try:
            s3.create_bucket(Bucket=name)
        except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
            log.info("bucket %s already exists; reusing it", name)
        if props.get("BucketEncryption"):
            rules = [
                {"ApplyServerSideEncryptionByDefault": r["ServerSideEncryptionByDefault"]}
                for r in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if props.get("PublicAccessBlockConfiguration"):
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
            )
        rules = (props.get("LifecycleConfiguration") or {}).get("Rules") or []
        if rules:
            s3.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in rules]}
            )
        self.physical[logical_id] = name
        self.attributes[logical_id] = {"Arn": f"arn:aws:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com"}

    def unsupported(self) -> dict[str, str]:
        """Resources the local stack neither creates nor plays (logical id -> type): said once at start."""
        return {k: v.get("Type", "?") for k, v in self.resources.items() if v.get("Type") not in SUPPORTED + EMULATED}

    def sender_identities(self) -> list[str]:
        """SES identities the template lets functions send from: `ses:FromAddress` conditions and identity ARNs.

        On AWS an operator verifies them in SES once; the emulator needs the same before it accepts a send.
        """
        found: list[str] = []

        def visit(statement: Any) -> None:
            actions = statement.get("Action", [])
            actions = [actions] if isinstance(actions, str) else actions
            if not any(str(a).lower().startswith("ses:") for a in actions):
                return
            for condition in (statement.get("Condition") or {}).values():
                for key, value in (condition or {}).items():
                    if key.lower() == "ses:fromaddress":
                        found.extend([value] if isinstance(value, str) else value)
            resources = statement.get("Resource", [])
            for arn in [resources] if isinstance(resources, str) else resources:
                if isinstance(arn, str) and ":identity/" in arn and "*" not in arn:
                    found.append(arn.split(":identity/", 1)[1])

        for spec in self.of_type("AWS::Serverless::Function").values():
            for policy in spec.get("Properties", {}).get("Policies", []) or []:
                if isinstance(policy, dict):
                    for statement in self.resolve(policy).get("Statement", []):
                        visit(statement)
        return sorted({f for f in found if isinstance(f, str) and f and "*" not in f})

    # --- functions ---------------------------------------------------------------------------------
    def functions(self) -> dict[str, FunctionSpec]:
        defaults = self.doc.get("Globals", {}).get("Function", {})
        found = {}
        for logical_id, spec in self.of_type("AWS::Serverless::Function").items():
            props = {**defaults, **spec.get("Properties", {})}
            env = {
                **defaults.get("Environment", {}).get("Variables", {}),
                **spec.get("Properties", {}).get("Environment", {}).get("Variables", {}),
            }
            layers = [self._layer_dir(ref) for ref in props.get("Layers", [])]
            found[logical_id] = FunctionSpec(
                logical_id=logical_id,
                handler=props["Handler"],
                code_dir=self.root / props["CodeUri"],
                timeout=int(props.get("Timeout", 3)),
                memory=int(props.get("MemorySize", 128)),
                layer_dirs=[d for d in layers if d is not None],
                events=dict(props.get("Events", {})),
                environment={k: str(self.resolve(v)) for k, v in env.items()},
            )
        return found

    def _layer_dir(self, ref: Any) -> Path | None:
        name = ref.get("Ref") if isinstance(ref, dict) else None
        layer = self.resources.get(name or "", {})
        if layer.get("Type") != "AWS::Serverless::LayerVersion":
            return None
        return self.root / layer["Properties"]["ContentUri"]


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the S3 API's shape."""
    out: dict[str, Any] = {"ID": rule.get("Id", "rule"), "Status": rule.get("Status", "Enabled")}
    out["Filter"] = {"Prefix": rule.get("Prefix", "")}
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    return out


def _stub_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("stub.py", "def handler(event, context):\n    raise RuntimeError('runs in process')\n")
    return buffer.getvalue()


_STUB_ZIP = _stub_zip()


def _local_role(iam: Any) -> str:
    name = "conveyor-local-functions"
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
    )
    try:
        return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"])
    except iam.exceptions.EntityAlreadyExistsException:
        return str(iam.get_role(RoleName=name)["Role"]["Arn"])


def _references(value: Any) -> set[str]:
    """Logical ids a resource's properties refer to (Ref, GetAtt, Sub)."""
    if isinstance(value, dict):
        found: set[str] = set()
        for key, arg in value.items():
            if key == "Ref" and isinstance(arg, str):
                found.add(arg)
            elif key == "Fn::GetAtt":
                found.add(arg.split(".", 1)[0] if isinstance(arg, str) else arg[0])
            elif key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                found |= {m.split(".", 1)[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
            found |= _references(arg)
        return found
    if isinstance(value, list):
        return set().union(*(_references(v) for v in value)) if value else set()
    return set()

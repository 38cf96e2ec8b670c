"""Request bodies at the edge, once for every route: size, encoding, and JSON whatever the Content-Type says.

Every body route takes JSON. A client that sends JSON without `Content-Type: application/json` (curl's `-d`
sends `application/x-www-form-urlencoded`) gets its body read as JSON all the same; a body that is not JSON is a
400 `malformed_json` whatever it claims to be. Bodies are UTF-8 (RFC 8259): other bytes are a 400
`invalid_encoding`. JSON nested deeper than DynamoDB can store a document is a 400 `too_deeply_nested`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from conveyor.platform.errors import BadRequest, PayloadTooLarge

MAX_BODY_BYTES = 256 * 1024
MAX_JSON_DEPTH = 32  # DynamoDB's limit for a nested document: nothing deeper could be stored
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class InvalidEncoding(BadRequest):
    code = "invalid_encoding"


class TooDeeplyNested(BadRequest):
    code = "too_deeply_nested"


def normalize(event: dict[str, Any]) -> dict[str, Any]:
    """The HTTP API event with its body as UTF-8 text declared as JSON (a new dict; the input is not changed).

    Raises PayloadTooLarge over MAX_BODY_BYTES and InvalidEncoding for bytes that are not UTF-8."""
    body = event.get("body")
    if not body:
        return event
    raw = _bytes(body, base64_encoded=bool(event.get("isBase64Encoded")))
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEncoding(
            "the request body is not UTF-8 text; send JSON encoded as UTF-8",
            details={"position": exc.start},
        ) from None
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    headers["content-type"] = "application/json"
    return {**event, "body": text, "isBase64Encoded": False, "headers": headers}


def _bytes(body: str, *, base64_encoded: bool) -> bytes:
    if base64_encoded:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidEncoding("the request body is marked base64 but is not base64") from None
    try:
        return body.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates: text no UTF-8 byte sequence can carry
        raise InvalidEncoding(
            "the request body is not UTF-8 text; send JSON encoded as UTF-8", details={"position": exc.start}
        ) from None


def loads(text: str) -> Any:
    """The resolver's JSON deserializer: json.loads, refusing what no route can store (deep nesting, lone
    surrogates written as \\u escapes). Malformed JSON raises json.JSONDecodeError (the resolver's 400)."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise _too_deep() from None
    # Cheap guards first (C-speed scans of the text); the walks run only when they could find something.
    if text.count("{") + text.count("[") > MAX_JSON_DEPTH and _depth(value) > MAX_JSON_DEPTH:
        raise _too_deep()
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidEncoding("the request body holds a \\u escape of a lone surrogate (not a character)") from None
    return value


def _too_deep() -> TooDeeplyNested:
    return TooDeeplyNested(
        f"the request body nests JSON more than {MAX_JSON_DEPTH} levels deep", details={"max_depth": MAX_JSON_DEPTH}
    )


def _depth(value: Any) -> int:
    """Nesting depth of objects and arrays (a scalar is 0, `{}` is 1), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest

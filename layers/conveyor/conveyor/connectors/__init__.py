"""CRM connectors: one module per CRM (zoho, pipedrive, hubspot), each a class implementing
`conveyor.connectors.base.Connector`, and this registry. Adding a CRM is one module plus one line here.

Connectors depend on `platform` only; the sync capability drives them (conveyor.sync).
"""

from __future__ import annotations

import importlib
from typing import Any

from conveyor.connectors.base import Change, Config, Connector, ContactData, Grant, InvalidGrant, Page

REGISTRY: dict[str, str] = {
    "zoho": "conveyor.connectors.zoho:Zoho",
    "pipedrive": "conveyor.connectors.pipedrive:Pipedrive",
    "hubspot": "conveyor.connectors.hubspot:HubSpot",
}


def connector_class(name: str) -> Any:
    module, _, attribute = REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def connector(name: str, config: Config) -> Connector:
    return connector_class(name)(config)


__all__ = ["REGISTRY", "Change", "Config", "Connector", "ContactData", "Grant", "InvalidGrant", "Page", "connector"]

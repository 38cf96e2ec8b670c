"""CRM sync: connections to CRMs (conveyor.connectors: Zoho CRM, Pipedrive, HubSpot), initial and delta syncs as
`crm.sync` processes, webhook-driven updates; CRM people become notify contacts (through notify's public API).

Modules: domain (connections, runs, the watermark rule, mapping: pure) · repository (SyncTable; only it touches
it) · vault (KMS-encrypted credentials and tokens) · crm (authenticated SSRF-safe HTTP, single-flight OAuth
refresh) · service (use cases) · jobs (`sync.fetch`, `sync.apply`, `sync.record`, the `crm.sync` process type) ·
api (/v1/connections) · sweeps (schedules).
"""

from __future__ import annotations

from conveyor.sync.domain import Connection, ConnectionState, SyncMode, SyncRun

__all__ = ["Connection", "ConnectionState", "SyncMode", "SyncRun"]

"""Reports: CSV and XLSX exports of a tenant's data, streamed into S3 by a process, downloaded through a URL
minted per click, with an optional "report ready" email.

Public API (for other capabilities, tests and benchmarks): `report_type` (register a report type: filters,
columns, the scope its data needs, and a pager that reads one page through the owning capability's public API),
`Column`, `Kind`, `ReportContext`, `Format`.
Modules: domain (report, states, cells, formula-injection escaping: pure) · formats (CSV/XLSX writers) ·
storage (the bucket: resumable multipart uploads, presigned URLs) · registry (report types) · sources (the
built-in types) · repository (the reports table) · service (use cases) · jobs (the `reports.export` process) ·
api (/v1/reports).
"""

from conveyor.reports.domain import Column, Format, Kind, ReportContext
from conveyor.reports.registry import report_type

__all__ = ["Column", "Format", "Kind", "ReportContext", "report_type"]

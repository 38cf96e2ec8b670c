"""Operating Conveyor: queue overview, dead letters, redrive, bulk job operations, pause/resume, readiness.

Queues are shared infrastructure; jobs belong to tenants. What each kind of key may do:

- `admin` (a tenant's administrator) — everything that only touches the caller's own tenant, plus
  aggregate queue numbers that name nobody:
    GET  /v1/queues                       queue depths and DLQ depth/age (aggregate, all tenants), the
                                          caller's own job counts, paused or not
    GET  /v1/queues/{name}/dead-letters   only the caller's messages (messages carry tenant_id); others are
                                          skipped and left exactly where they were
    POST /v1/queues/{name}/redrive        moves only the caller's messages back to the queue
    POST /v1/jobs/retry-failed            the caller's failed jobs
    DELETE /v1/jobs?state=&before=        the caller's finished jobs
- `platform` (the operator of the deployment; never implied by `admin`, granted explicitly) — what acts on
  every tenant at once:
    POST /v1/queues/{name}/pause|resume   stops/starts the worker's event source mapping for that queue
    ?all_tenants=true on dead-letters and redrive: every message, including unreadable ones
"""

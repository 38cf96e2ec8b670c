"""Email: the `email.send` job type, sent with Amazon SES v2, and the templates that ship in the layer.

Public API (what other capabilities use): `send_via_ses` (one SES send on behalf of a job), `render` and
`template_names` (the shipped templates), `RenderedEmail`.
Modules: templates (Jinja2 rendering) · ses (the SES v2 adapter) · jobs (the `email.send` job type).
"""

from __future__ import annotations

from typing import Any

from conveyor.email.templates import RenderedEmail, render, template_names

__all__ = ["RenderedEmail", "render", "send_via_ses", "template_names"]


def send_via_ses(**request: Any) -> str:
    """conveyor.email.ses.send_via_ses, imported on first use: only the worker sends (the scheduler and the API,
    which reach email through notify and the templates, never load the AWS client stack for it)."""
    from conveyor.email.ses import send_via_ses as send

    return send(**request)

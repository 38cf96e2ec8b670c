"""Email: the `email.send` job type, sent with Amazon SES v2, and the templates that ship in the layer.

Public API (what other capabilities use): `send_via_ses` (one SES send on behalf of a job), `render` and
`template_names` (the shipped templates), `RenderedEmail`.
Modules: templates (Jinja2 rendering) · ses (the SES v2 adapter) · jobs (the `email.send` job type).
"""

from __future__ import annotations

from conveyor.email.ses import send_via_ses
from conveyor.email.templates import RenderedEmail, render, template_names

__all__ = ["RenderedEmail", "render", "send_via_ses", "template_names"]

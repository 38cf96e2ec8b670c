"""Email templates shipped in the layer: templates/<name>/{subject.txt, body.txt, body.html}, rendered with Jinja2.

HTML is autoescaped; a variable the template needs but the job's context lacks fails the job permanently
instead of sending a half-empty email.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from conveyor.platform.errors import PermanentError

TEMPLATE_DIR = Path(__file__).parent / "templates"


@cache  # the templates ship in the layer and never change at run time; every email payload validation asks
def template_names() -> frozenset[str]:
    return frozenset(p.name for p in TEMPLATE_DIR.iterdir() if (p / "subject.txt").is_file())


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str | None
    html: str | None
    sms: str | None = None  # templates/<name>/sms.txt: the short form for SMS notifications, if there is one


@cache
def _environment() -> Any:
    import jinja2  # only the worker renders; the API never pays for this import

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
    )


def render(name: str, context: dict[str, Any]) -> RenderedEmail:
    import jinja2

    if name not in template_names():
        raise PermanentError(f"unknown email template {name!r}")
    env = _environment()

    def part(filename: str) -> str | None:
        if not (TEMPLATE_DIR / name / filename).is_file():
            return None
        try:
            # The context is passed as one mapping, never as keyword arguments: any key is a plain variable
            # (`self`, `args`...), never a clash with render()'s own parameters.
            return env.get_template(f"{name}/{filename}").render(dict(context))
        except jinja2.UndefinedError as exc:
            raise PermanentError(f"template {name!r} needs a context value: {exc.message}") from None

    subject = (part("subject.txt") or "").strip()
    sms = part("sms.txt")
    return RenderedEmail(
        subject=subject, text=part("body.txt"), html=part("body.html"), sms=sms.strip() if sms else None
    )

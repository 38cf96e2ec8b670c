"""The dashboard's vendored htmx is the npm package's file, with its version and licence, shipped in the layer."""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "layers/conveyor/conveyor/dashboard"


def test_the_vendored_htmx_is_the_recorded_npm_file_with_its_licence():
    from conveyor.dashboard import web

    record = (DASHBOARD / "static/VENDORED.txt").read_text()
    version = re.search(r"htmx-(\d+\.\d+\.\d+)\.min\.js", web.HTMX).group(1)
    assert f"htmx.org {version}, from the npm registry" in record
    recorded = re.search(r"sha256:\s+([0-9a-f]{64})", record).group(1)
    assert hashlib.sha256((DASHBOARD / "static" / web.HTMX).read_bytes()).hexdigest() == recorded
    assert "Zero-Clause BSD" in (DASHBOARD / f"static/htmx-{version}.LICENSE.txt").read_text()


def test_templates_and_static_files_are_package_data():
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = package_data["conveyor"]
    shipped = {p.relative_to(ROOT / "layers/conveyor/conveyor") for p in DASHBOARD.rglob("*") if p.is_file()}
    shipped = {p for p in shipped if p.suffix in (".html", ".js", ".css", ".txt")}
    assert shipped
    for path in shipped:
        assert any(path.match(pattern) for pattern in patterns), path


def test_no_page_loads_anything_from_another_origin():
    for template in (DASHBOARD / "templates").glob("*.html"):
        text = template.read_text()
        assert not re.search(r"""(src|href)=["']https?://""", text), template.name
        assert "<script>" not in text and "style=" not in text, template.name  # the CSP allows neither

"""The JSON report under build/: what was built and pushed, by digest.

One file, written atomically; build-images fills "build", push-images fills
"push". Later tasks (pull-images, ci-config) read digests from it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from xarch.model.paths import build_dir
from xarch.model.tables import format_table

REPORT_NAME = "xarch-report.json"


def report_path(directory: Path | None = None) -> Path:
    return (directory or build_dir()) / REPORT_NAME


def read_report(path: Path | None = None) -> dict[str, Any]:
    p = path or report_path()
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        return {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def write_section(section: str, value: Any, path: Path | None = None) -> Path:
    p = path or report_path()
    data = read_report(p)
    data[section] = value
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, p)
    return p


def summary(data: dict[str, Any]) -> str:
    """A human summary of the report: one line per image and per index."""
    out: list[str] = []
    build = data.get("build") or {}
    if build:
        out.append(f"Built ({build.get('finished', '?')}, config {build.get('config', '?')}):")
        rows: list[tuple[str, ...]] = [("TARGET", "PLATFORM", "STATUS", "BASE DIGEST", "IMAGE")]
        for t in build.get("targets", []):
            rows.append(
                (
                    t["target"],
                    t["platform"],
                    t["status"],
                    (t.get("base") or {}).get("digest", "")[:19] + "...",
                    t["image"],
                )
            )
        out.append(format_table(rows))
    push = data.get("push") or {}
    if push:
        out.append(f"\nPushed to {push.get('registry', '?')} ({push.get('finished', '?')}):")
        rows = [("KIND", "PLATFORM", "DIGEST", "REFERENCE")]
        for im in push.get("images", []):
            rows.append(("image", im["platform"], im["digest"], im["ref"]))
        for ix in push.get("indexes", []):
            plats = ",".join(m["platform"] for m in ix["manifests"])
            rows.append(("index", plats, ix["digest"], ix["ref"]))
        out.append(format_table(rows))
        for e in push.get("errors", []):
            out.append(f"  error: {e.splitlines()[0]}")
    return "\n".join(out)

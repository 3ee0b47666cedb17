"""The JSON report under build/: what was built and pushed, by digest.

One file, written atomically; build-images fills "build", push-images fills
"push". Later tasks (pull-images, ci-config) read digests from it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .paths import build_dir

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

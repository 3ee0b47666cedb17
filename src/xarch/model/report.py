"""The JSON report under build/: what was built and pushed, by digest.

One file, written atomically (a temporary file in the same directory, then
renamed); build-images fills "build", push-images and push-index fill one record
per config under "pushes". Later tasks (report, pull-images, provision-runner,
ci-config) read the digests of the record for their ``--config``.

Push records are keyed by the config's ``<registry>/<namespace>``
(:func:`xarch.model.naming.push_key`): those two decide every image name a config
publishes, so a push with another config that publishes elsewhere keeps its own
record, and a report written on one machine is found from another (a path would
differ between CI machines). A config that publishes to the same registry and
namespace updates the same record, as its images overwrite the same names.

A report that cannot be read is an error naming the file and what to do; it is
never taken as empty and then overwritten.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xarch.errors import CorruptState, NotPushed, ReportWriteError
from xarch.model import faults
from xarch.model.config import Config
from xarch.model.naming import push_key
from xarch.model.paths import build_dir
from xarch.model.tables import format_table

REPORT_NAME = "xarch-report.json"
PUSHES = "pushes"


def report_path(directory: Path | None = None) -> Path:
    return (directory or build_dir()) / REPORT_NAME


def _corrupt(p: Path, why: str) -> CorruptState:
    return CorruptState(
        f"{p}: the report cannot be read ({why}); nothing was changed.\n"
        f"  Move it away (`mv {p} {p}.bad`) or delete it, then run build-images / "
        "push-images again to record the images."
    )


def read_report(path: Path | None = None) -> dict[str, Any]:
    """The report, {} when there is none; CorruptState when it cannot be read."""
    p = path or report_path()
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        return {}
    except IsADirectoryError:
        raise _corrupt(p, "it is a directory") from None
    except OSError as e:
        raise _corrupt(p, e.strerror or type(e).__name__) from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _corrupt(p, "not UTF-8 text") from None
    except ValueError as e:
        raise _corrupt(p, f"not JSON: {e}") from None
    if not isinstance(data, dict):
        raise _corrupt(p, f"a JSON {type(data).__name__}, not an object")
    pushes = data.get(PUSHES)
    if pushes is not None and not (
        isinstance(pushes, dict) and all(isinstance(v, dict) for v in pushes.values())
    ):
        raise _corrupt(p, f"{PUSHES!r} is not a mapping of push records")
    return data


def write_section(section: str, value: Any, path: Path | None = None) -> Path:
    """Set one top-level section, keeping the others."""
    p = path or report_path()
    data = read_report(p)
    data[section] = value
    _write(p, data)
    return p


def _write(p: Path, data: dict[str, Any]) -> None:
    """Replace the report in one rename: on any failure the old one stays as it was and
    the temporary file is gone. A host fault (full disk, read-only, permission) is said
    with the report's path, not as a bare "No space left on device"."""
    tmp: str | None = None
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, p)
    except OSError as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        reason = e.strerror or type(e).__name__
        fault = faults.recognise(f"{reason} (errno {e.errno})", path=str(p.parent))
        raise ReportWriteError(
            f"cannot write the report {p}: {reason}; the report there is unchanged"
            + (f"\n  {fault}" if fault else "")
        ) from None
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise


def push_records(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every push record of a report, by key."""
    pushes = data.get(PUSHES) or {}
    return {str(k): v for k, v in pushes.items() if isinstance(v, dict)}


def push_record(data: Mapping[str, Any], config: Config) -> dict[str, Any] | None:
    """The push record of ``config`` (by its registry and namespace), or None."""
    return push_records(data).get(push_key(config))


def write_push_record(config: Config, record: dict[str, Any], path: Path | None = None) -> Path:
    """Replace the push record of ``config``; the other configs' records are kept."""
    p = path or report_path()
    data = read_report(p)
    pushes = push_records(data)
    pushes[push_key(config)] = record
    data[PUSHES] = pushes
    _write(p, data)
    return p


def require_push_record(
    data: Mapping[str, Any], config: Config, report_file: Path
) -> dict[str, Any]:
    """The push record of ``config`` with at least one image, or NotPushed saying
    what to run (and which configs the report does hold pushes for)."""
    record = push_record(data, config)
    if record is not None and record.get("images"):
        return record
    todo = f"run `invoke push-images --config {config.path}` first (it records the digests)"
    if not data:
        where = f"no report at {report_file}"
    else:
        where = f"{report_file}: no pushed images recorded for {push_key(config)}"
        others = [k for k in push_records(data) if k != push_key(config)]
        if others:
            where += f" (it holds pushes to {', '.join(others)})"
    raise NotPushed(f"{where}; {todo}, or pass --report PATH to the report of that push")


def summary(data: Mapping[str, Any], config: Config | None = None) -> str:
    """A human summary of the report: one line per image and per index; only the push
    record of ``config`` when one is given."""
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
    records = push_records(data)
    if config is not None:
        records = {k: v for k, v in records.items() if k == push_key(config)}
    for key, push in records.items():
        out.append(
            f"\nPushed to {key} ({push.get('finished', '?')}, config {push.get('config', '?')}):"
        )
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

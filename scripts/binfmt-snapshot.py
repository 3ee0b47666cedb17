#!/usr/bin/env python3
"""Save the host's binfmt_misc handlers to a file, or put them back from it (CI helper).

    scripts/binfmt-snapshot.py save FILE      # every entry, enabled or not, and the status
    scripts/binfmt-snapshot.py restore FILE   # re-create/re-enable those, remove the rest

Used by scripts/ci-host-kinds.sh so the passes on other kinds of host leave the machine as
the run found it. Entries are kept byte-exact (magic and mask as hex; the interpreter path
through surrogate escapes).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from xarch.errors import XarchError
from xarch.host import binfmt


def save(path: Path) -> None:
    state = binfmt.snapshot()
    doc = {
        "status_enabled": state.status_enabled,
        "entries": [
            {
                **asdict(e),
                "magic": e.magic.hex(),
                "mask": e.mask.hex(),
                "interpreter": os.fsencode(e.interpreter).hex(),
            }
            for e in state.entries
        ],
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, path)
    names = ", ".join(state.names) or "-"
    print(f"saved {len(state.entries)} binfmt_misc entries to {path}: {names}")


def restore(path: Path) -> None:
    doc = json.loads(path.read_text())
    entries = tuple(
        binfmt.BinfmtEntry(
            **{
                **e,
                "magic": bytes.fromhex(e["magic"]),
                "mask": bytes.fromhex(e["mask"]),
                "interpreter": os.fsdecode(bytes.fromhex(e["interpreter"])),
            }
        )
        for e in doc["entries"]
    )
    binfmt.restore(binfmt.HostBinfmtState(entries=entries, status_enabled=doc["status_enabled"]))
    print(f"binfmt_misc restored from {path}: {', '.join(e.name for e in entries) or '-'}")


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] not in ("save", "restore"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        (save if sys.argv[1] == "save" else restore)(Path(sys.argv[2]))
    except (XarchError, OSError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

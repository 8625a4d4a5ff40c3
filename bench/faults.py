"""The fault tests in their long form: the platform-API outage lasts 60 s instead of 3 s.

    python -m bench.faults [--outage 60] [--out bench/results/faults.json]

Runs ``tests/reliability`` with ``SWITCHBOARD_OUTAGE_SECONDS`` set, and writes what each
test reported (messages, duplicates after a kill -9, 503s while the store was locked,
time to deliver everything after the outage) plus pass/fail to JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def run(outage: float, out: Path, extra: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="switchboard-faults-") as tmp:
        junit = Path(tmp) / "junit.xml"
        env = {**os.environ, "SWITCHBOARD_OUTAGE_SECONDS": str(outage)}
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "tests/reliability", "-q", "-p", "no:cacheprovider",
             f"--junitxml={junit}", "-o", "junit_family=xunit1", "-s", *extra],
            cwd=ROOT, env=env, check=False,
        )
        tests: list[dict[str, Any]] = []
        if junit.exists():
            for case in ET.parse(junit).getroot().iter("testcase"):
                props = {str(p.get("name")): p.get("value") for p in case.iter("property")}
                failed = case.find("failure") is not None or case.find("error") is not None
                tests.append({"test": case.get("name"), "seconds": float(case.get("time") or 0),
                              "passed": not failed, **props})
    result = {"outage_seconds": outage, "exit_code": proc.returncode, "passed": proc.returncode == 0,
              "wall_seconds": round(time.monotonic() - started, 1), "tests": tests}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.splitlines()[0])
    parser.add_argument("--outage", type=float, default=60.0, help="seconds the platform APIs fail")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "faults.json")
    args, extra = parser.parse_known_args(argv)
    result = run(args.outage, args.out, extra)
    for test in result["tests"]:
        status = "ok  " if test["passed"] else "FAIL"
        details = {k: v for k, v in test.items() if k not in ("test", "seconds", "passed")}
        print(f"{status} {test['test']} ({test['seconds']:.1f} s) {details or ''}")
    print(f"written: {args.out}")
    return int(result["exit_code"])


if __name__ == "__main__":
    raise SystemExit(main())

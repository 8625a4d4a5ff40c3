"""Rasa as the oracle: train Rasa 3.6 and Switchboard on the same project, run both test-story
evaluations, and diff their verdicts per story (a developer tool, not part of CI).

    python -m bench.rasa_oracle [--rasa-python /work/rasa310/bin/python] [--project DIR ...]
                                [--mode text|intent|both] [--work DIR]

Rasa needs its own Python 3.10 venv (``pip install 'rasa==3.6.*'``, a few minutes). Each
project is copied into ``--work``; Rasa's model and verdicts are kept there and redone only
when the project's files change. ``text`` mode is ``rasa test core --e2e`` (what ``rasa test``
runs: user texts through the NLU); ``intent`` mode is ``rasa test core`` (intents as
given). Exit status 1 when any verdict differs.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "rasa_projects"
DEFAULT_RASA_PYTHON = Path("/work/rasa310/bin/python")
IGNORED = (".switchboard-models", "models", "results", "__pycache__", ".rasa")
_SOURCE_SUFFIX = re.compile(r"^(?P<name>.*) \((?P<file>[^()]*)\)$")


@dataclass(frozen=True)
class Verdicts:
    passed: dict[str, int]  # story name -> conversations that passed
    failed: dict[str, int]  # story name -> conversations that failed
    seconds: float


def project_hash(project: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(project.rglob("*")):
        if path.is_file() and not any(part in IGNORED for part in path.relative_to(project).parts):
            digest.update(str(path.relative_to(project)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def copy_project(project: Path, target: Path) -> None:
    if target.exists():
        for child in target.iterdir():
            if child.name not in ("models", ".switchboard-models", "rasa-text", "rasa-intent"):  # kept between runs
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    shutil.copytree(project, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*IGNORED))


def test_story_names(project: Path) -> list[str]:
    names: list[str] = []
    for path in sorted((project / "tests").rglob("*.y*ml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        names.extend(str(story["story"]) for story in doc.get("stories") or [])
    return names


def failed_story_names(failed_file: Path) -> dict[str, int]:
    """Story names in a ``failed_test_stories.yml`` (the `` (file)`` suffix both tools add removed)."""
    if not failed_file.is_file():
        raise RuntimeError(f"{failed_file} was not written")
    doc = yaml.safe_load(failed_file.read_text(encoding="utf-8")) or {}
    counts: dict[str, int] = {}
    for story in doc.get("stories") or []:
        match = _SOURCE_SUFFIX.match(str(story["story"]))
        name = match.group("name") if match else str(story["story"])
        counts[name] = counts.get(name, 0) + 1
    return counts


def verdicts(names: list[str], failed: dict[str, int], seconds: float) -> Verdicts:
    passed = {name: 0 if name in failed else 1 for name in names}
    return Verdicts(passed, failed, seconds)


def run(command: list[str], cwd: Path, log: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    with log.open("w") as out:
        result = subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env, check=False)
    if result.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError(f"{' '.join(command)} exited {result.returncode} (log {log}):\n" + "\n".join(tail))
    return time.perf_counter() - started


def rasa_verdicts(rasa_python: Path, work: Path, mode: str, env: dict[str, str], current: str) -> Verdicts:
    """Rasa's verdicts; ``current`` is the project's hash (Rasa retrains when it changed)."""
    model_dir = work / "models"
    stamp = model_dir / "project.hash"
    if not (model_dir / "oracle.tar.gz").is_file() or not stamp.is_file() or stamp.read_text() != current:
        print(f"  rasa train ({work.name}) ...", flush=True)
        seconds = run([str(rasa_python), "-m", "rasa", "train", "--fixed-model-name", "oracle", "--out", str(model_dir)],
                      work, work / "rasa-train.log", env)
        stamp.write_text(current)
        print(f"  rasa trained in {seconds:.0f}s", flush=True)
    out = work / f"rasa-{mode}"
    done = out / "project.hash"
    if done.is_file() and done.read_text() == current:  # Rasa's verdicts on this very project are known
        return verdicts(test_story_names(work), failed_story_names(out / "failed_test_stories.yml"), 0.0)
    shutil.rmtree(out, ignore_errors=True)
    command = [str(rasa_python), "-m", "rasa", "test", "core", "--model", str(model_dir / "oracle.tar.gz"),
               "--stories", "tests", "--out", str(out)]
    if mode == "text":
        command.append("--e2e")
    seconds = run(command, work, work / f"rasa-test-{mode}.log", env)
    done.write_text(current)
    return verdicts(test_story_names(work), failed_story_names(out / "failed_test_stories.yml"), seconds)


def switchboard_verdicts(work: Path, mode: str, env: dict[str, str]) -> Verdicts:
    out = work / f"switchboard-{mode}"
    shutil.rmtree(out, ignore_errors=True)
    switchboard = Path(sys.executable).parent / "switchboard"
    seconds = run([str(switchboard), "test", "stories", "--project", str(work), "--mode", mode, "--out", str(out)],
                  work, work / f"switchboard-test-{mode}.log", env)
    return verdicts(test_story_names(work), failed_story_names(out / "failed_test_stories.yml"), seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rasa-python", type=Path, default=DEFAULT_RASA_PYTHON, help="python of a venv with rasa 3.6")
    parser.add_argument("--project", type=Path, action="append", help="a Rasa 3 project (default: every corpus project)")
    parser.add_argument("--mode", choices=("text", "intent", "both"), default="both")
    parser.add_argument("--work", type=Path, default=Path("/tmp/rasa-oracle"), help="where copies, models and results go")
    args = parser.parse_args(argv)
    if not args.rasa_python.is_file():
        print(f"no Python at {args.rasa_python}: create a Python 3.10 venv and pip install 'rasa==3.6.*'", file=sys.stderr)
        return 2
    projects = args.project or sorted(p for p in CORPUS.iterdir() if (p / "domain.yml").is_file())
    modes = ("text", "intent") if args.mode == "both" else (args.mode,)
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0"}
    rows: list[tuple[str, str, str, str, str, str]] = []
    summary: list[tuple[str, str, int, int, int, int]] = []
    for project in projects:
        project = project.resolve()
        if not project.is_dir():
            print(f"{project}: no such project directory", file=sys.stderr)
            return 2
        work = args.work / project.name
        work.mkdir(parents=True, exist_ok=True)
        copy_project(project, work)
        print(f"{project.name}", flush=True)
        for mode in modes:
            rasa = rasa_verdicts(args.rasa_python, work, mode, env, project_hash(project))
            ours = switchboard_verdicts(work, mode, env)
            agree = 0
            for name in rasa.passed:
                r, s = rasa.passed[name], ours.passed.get(name, 0)
                agree += r == s
                rows.append((project.name, mode, name, "pass" if r else "FAIL", "pass" if s else "FAIL", "" if r == s else "DIFFERS"))
            summary.append((project.name, mode, sum(rasa.passed.values()), sum(ours.passed.values()), agree, len(rasa.passed)))
            print(f"  {mode}: rasa {sum(rasa.passed.values())}/{len(rasa.passed)} ({rasa.seconds:.0f}s), "
                  f"switchboard {sum(ours.passed.values())}/{len(ours.passed)} ({ours.seconds:.1f}s)", flush=True)
    print("\n| project | mode | story | Rasa 3.6 | Switchboard | |\n|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print("\n| project | mode | Rasa passes | Switchboard passes | same verdict |\n|---|---|---|---|---|")
    for name, mode, rasa_ok, ours_ok, agree, total in summary:
        print(f"| {name} | {mode} | {rasa_ok}/{total} | {ours_ok}/{total} | {agree}/{total} |")
    return 0 if all(agree == total for *_, agree, total in summary) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""``switchboard bench``: the benchmark harness (bench/) from the command line.

The harness lives in the repository's ``bench/`` folder (it drives the farm with the
test fakes), so this command works from a source checkout, like ``make bench``. The
product never imports it: the command runs ``python -m bench.run`` (or ``bench.faults``)
in the checkout, as ``make bench`` does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False)

ROOT = Path(__file__).resolve().parent.parent


@app.command()
def bench(
    duration: Annotated[float, typer.Option(help="Seconds per measured phase.")] = 10.0,
    customers: Annotated[int, typer.Option(help="Simulated customers (half Telegram, half WhatsApp).")] = 100,
    engines: Annotated[str, typer.Option(help="Farm engines to measure: echo, project (comma-separated).")]
    = "echo,project",
    rss_conversations: Annotated[int, typer.Option(help="Stored conversations for the memory figure.")] = 100_000,
    quick: Annotated[bool, typer.Option("--quick", help="Short phases, 10k stored conversations.")] = False,
    faults: Annotated[bool, typer.Option("--faults", help="Run the long fault tests instead (60 s outage).")]
    = False,
    out: Annotated[Path | None, typer.Option(help="JSON results file.")] = None,
) -> None:
    """Throughput, latency and memory of the farm against a bare aiohttp baseline (loopback)."""
    if not (ROOT / "bench" / "run.py").is_file() or not (ROOT / "tests" / "fakes").is_dir():
        typer.echo("switchboard bench needs a source checkout (bench/ and tests/fakes/)", err=True)
        raise typer.Exit(2)
    if faults:
        argv = ["-m", "bench.faults", *([] if out is None else ["--out", str(out)])]
    else:
        argv = ["-m", "bench.run", "--duration", str(duration), "--customers", str(customers), "--engines", engines,
                "--rss-conversations", str(rss_conversations)]
        if quick:
            argv.append("--quick")
        if out is not None:
            argv += ["--out", str(out)]
    raise typer.Exit(subprocess.run([sys.executable, *argv], cwd=ROOT, check=False).returncode)

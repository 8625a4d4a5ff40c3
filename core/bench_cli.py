"""``switchboard bench``: the benchmark harness (bench/) from the command line.

The harness lives in the repository's ``bench/`` folder (it drives the farm with the
test fakes), so this command works from a source checkout, like ``make bench``.
"""

from __future__ import annotations

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
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    if faults:
        from bench import faults as fault_run

        raise typer.Exit(fault_run.main([] if out is None else ["--out", str(out)]))
    from bench import run as bench_run

    argv = ["--duration", str(duration), "--customers", str(customers), "--engines", engines,
            "--rss-conversations", str(rss_conversations)]
    if quick:
        argv.append("--quick")
    if out is not None:
        argv += ["--out", str(out)]
    bench_run.cli(argv)

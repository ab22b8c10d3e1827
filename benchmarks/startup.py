"""What compat_plugin's Twisted start-up hook adds to interpreter start-up.

Two fresh virtual environments of the running interpreter each get the compat_plugin this
interpreter imports in their site-packages (its files copied there and byte-compiled, as pip
would install a wheel, so nothing needs building); in one, the hook is enabled: the ``.pth``
file that ``compat-plugin twisted enable`` writes is written there.  Then ``python -c pass`` is
timed in each, round by round, the order alternating, as is ``python -c pass`` with
``COMPAT_PLUGIN_TWISTED=0`` in the enabled one.  Reported: each one's median, and the median of
its per-round differences from the environment without the hook.  Target: at most 1 ms added.

Usage: ``python benchmarks/startup.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import _compat_plugin_twisted_hook
import compat_plugin
from compat_plugin._twisted_site import PTH_NAME, PTH_TEXT

HOOK_MODULE = _compat_plugin_twisted_hook.__name__
TARGET_MS = 1.0
# Set by the shell, these would change what the children import or whether the hook runs.
DROPPED = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "COMPAT_PLUGIN_TWISTED")


class Contender(NamedTuple):
    label: str
    python: Path
    environment: dict[str, str]


def make_venv(root: Path, *, enabled: bool) -> Path:
    """A venv without pip holding compat_plugin, with the hook enabled or not; its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    site = Path(purelib)
    shutil.copytree(Path(compat_plugin.__file__).parent, site / "compat_plugin",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(_compat_plugin_twisted_hook.__file__, site)
    # Byte-compiled by the venv's interpreter, as pip compiles what it installs (and as a
    # PYTHONDONTWRITEBYTECODE environment would otherwise never do).
    subprocess.run([str(python), "-m", "compileall", "-q", str(site)], check=True)
    if enabled:
        (site / PTH_NAME).write_text(PTH_TEXT, encoding="ascii")
    return python


def hook_active(contender: Contender) -> bool:
    code = f"import sys; h = sys.modules.get({HOOK_MODULE!r}); print(bool(h and h.active()))"
    result = subprocess.run([str(contender.python), "-c", code], env=contender.environment,
                            check=True, capture_output=True, text=True)
    return result.stdout.strip() == "True"


def time_once(contender: Contender) -> float:
    """Milliseconds for one ``python -c pass``, from spawning it to its exit."""
    start = time.perf_counter_ns()
    subprocess.run([str(contender.python), "-c", "pass"], env=contender.environment, check=True)
    return (time.perf_counter_ns() - start) / 1e6


def measure(contenders: list[Contender], rounds: int, warmup: int) -> list[list[float]]:
    """Per contender, one time per round; each round runs every contender once, the order
    rotating from round to round."""
    times: list[list[float]] = [[] for _ in contenders]
    for round_number in range(warmup + rounds):
        shift = round_number % len(contenders)
        for index in [*range(shift, len(contenders)), *range(shift)]:
            elapsed = time_once(contenders[index])
            if round_number >= warmup:
                times[index].append(elapsed)
    return times


def report(contenders: list[Contender], times: list[list[float]], rounds: int) -> str:
    base = times[0]
    lines = [
        f"Interpreter start-up (`python -c pass`), Python {platform.python_version()} "
        f"({sys.executable}); {rounds} rounds, medians:",
        "",
        "| environment | start-up (ms) | added (ms) | target |",
        "|---|---:|---:|---|",
    ]
    for position, (contender, samples) in enumerate(zip(contenders, times)):
        if position == 0:
            added, target = "—", ""
        else:
            difference = statistics.median(s - b for s, b in zip(samples, base))
            added, target = f"{difference:+.2f}", f"≤ +{TARGET_MS:g} ms"
        lines.append(
            f"| {contender.label} | {statistics.median(samples):.2f} | {added} | {target} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=300, help="timed rounds (default 300)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed rounds first")
    args = parser.parse_args(argv)
    environment = {k: v for k, v in os.environ.items() if k not in DROPPED}
    with tempfile.TemporaryDirectory(prefix="compat-plugin-startup-") as directory:
        without = make_venv(Path(directory) / "without", enabled=False)
        enabled = make_venv(Path(directory) / "enabled", enabled=True)
        contenders = [
            Contender("compat_plugin installed, hook not enabled", without, environment),
            Contender("hook enabled", enabled, environment),
            Contender("hook enabled, COMPAT_PLUGIN_TWISTED=0", enabled,
                      {**environment, "COMPAT_PLUGIN_TWISTED": "0"}),
        ]
        active = [hook_active(contender) for contender in contenders]
        if active != [False, True, False]:
            print(f"the hook is not where it should be: {active}", file=sys.stderr)
            return 1
        times = measure(contenders, args.rounds, args.warmup)
    print(report(contenders, times, args.rounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

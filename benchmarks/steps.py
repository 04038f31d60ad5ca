"""Resumable benchmark steps: each step in its own child process, its wall time and peak RSS (os.wait4: the
child's own, not the PostgreSQL server's) recorded in OUT/state.json; a rerun with the same OUT skips the
steps already done. Used by benchmarks/science.py and benchmarks/paper_scale.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def timed(fn) -> tuple[float, object]:
    """(seconds, result) of one call."""
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def load_state(out: Path) -> dict:
    """The steps done so far in OUT (empty for a new OUT)."""
    state_file = out / "state.json"
    return json.loads(state_file.read_text()) if state_file.exists() else {}


def write_result(out: Path, name: str, result: dict) -> None:
    """The child's side: leave one step's result for the parent."""
    (out / f"{name}.result.json").write_text(json.dumps(result, default=str))


def run_steps(script: str, argv: list[str], out: Path, steps, env: dict | None = None) -> dict:
    """Run each step not yet done as `python script *argv --run-step NAME`; returns the state."""
    state = load_state(out)
    for name in steps:
        if state.get(name, {}).get("done"):
            continue
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, script, *argv, "--run-step", name], env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"step {name} failed (exit {os.waitstatus_to_exitcode(status)}); rerun to resume from it")
        state[name] = {"done": True, "seconds": round(time.perf_counter() - t0, 1),
                       "peak_rss_mb": round(usage.ru_maxrss / 1024),
                       "result": json.loads((out / f"{name}.result.json").read_text())}
        (out / "state.json").write_text(json.dumps(state, indent=1, default=str))
        print(f"{name}: {state[name]['seconds']} s, peak {state[name]['peak_rss_mb']} MB", file=sys.stderr)
    return state


def run_or_dispatch(script: str, argv: list[str], out: Path, steps, run_step, args, env: dict | None = None):
    """In a child (--run-step NAME): run that step, leave its result and return None; in the parent: run the
    steps not yet done, each in its own child, and return the state."""
    out.mkdir(parents=True, exist_ok=True)
    if args.run_step:
        write_result(out, args.run_step, run_step(args.run_step, args, load_state(out)))
        return None
    return run_steps(script, argv, out, steps, env)

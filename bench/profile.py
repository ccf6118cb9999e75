"""Where a request's CPU goes, under load: py-spy samples the server's workers while wrk loads
them, and each sample is charged to a layer.

    python bench/profile.py [--duration 10] [--connections 16] [--top N]
                            [--scenarios upsert,put,get-by,minimal]

It serves the service as bench/load.py does (`make serve` on a fresh, seeded database, the same
scenarios) and, for each scenario, runs wrk while `py-spy record --gil` samples gunicorn's
workers: only samples holding the GIL count, so waits on the database and the network are left
out and what remains is the workers' Python CPU. Each sample goes to the layer of its innermost
frame outside the standard library (json, re, copy… count for the code that called them):

  server       gunicorn: accepting, parsing and writing HTTP
  django       Django's handler, middleware, URL resolver, request and response objects
  django db    Django's database layer (cursor wrappers, transactions, signals from it)
  drf          Django REST framework: dispatch, authentication and throttle plumbing,
               parsers, serializers and fields, renderers
  psycopg      the PostgreSQL driver
  libraries    other installed packages (CORS, django-axes, WhiteNoise, asgiref…)
  ours         this repository's code (consentsite/, consents/, members/, bench's minimal view)

The shares are scaled to the workers' user CPU per request, read from /proc around the same wrk
run; their system CPU (sockets, the kernel's side of each request) is printed apart. With
`--top N` it also lists the N frames that were charged the most, to name the next cost.
py-spy is in requirements-dev.txt; it needs ptrace, which root has.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import threading

from common import ROOT, cpu_times, process_group
from load import SCENARIOS, ensure_wrk, run_wrk, serving

LAYERS = {
    "gunicorn": "server",
    "django": "django",
    "rest_framework": "drf",
    "rest_framework_api_key": "drf",
    "drf_spectacular": "drf",
    "psycopg": "psycopg",
    "psycopg_c": "psycopg",
    "psycopg_pool": "psycopg",
    "corsheaders": "libraries",
    "axes": "libraries",
    "whitenoise": "libraries",
    "asgiref": "libraries",
    "environ": "libraries",
    "consentsite": "ours",
    "consents": "ours",
    "members": "ours",
    "minimal_view.py": "ours",
}
ORDER = ["server", "django", "django db", "drf", "psycopg", "libraries", "ours", "other"]
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^:()]*)(?::\d+)?\)$")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="WEB_CONCURRENCY")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--database", default="consentsite_profile")
    parser.add_argument("--scenarios", default="upsert,put,get-by,minimal")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=0, help="also list the N costliest frames")
    args = parser.parse_args()

    ensure_wrk()
    py_spy = ROOT / ".venv" / "bin" / "py-spy"
    with serving(args.database, args.port, args.workers) as (server, _, key):
        header = " ".join(f"{layer:>9}" for layer in ORDER)
        print(f"CPU ms/request  {'scenario':<8} {'req/s':>7} {header} {'system':>9} {'total':>9}")
        for name in args.scenarios.split(","):
            lua = SCENARIOS[name]
            run_wrk(lua, key, args.port, args.connections, 1)  # warm-up
            workers = process_group(server.pid)
            before = cpu_times(workers)
            with tempfile.NamedTemporaryFile(suffix=".txt") as samples:
                recorder = threading.Thread(
                    target=record,
                    args=(py_spy, server.pid, args.rate, args.duration, samples.name),
                )
                recorder.start()
                result = run_wrk(lua, key, args.port, args.connections, args.duration)
                recorder.join()
                after = cpu_times(workers)
                layers, frames = charged(samples.name)
            per_request = 1000 / result["requests"]
            user = (after[0] - before[0]) * per_request
            system = (after[1] - before[1]) * per_request
            total = sum(layers.values()) or 1
            shares = " ".join(f"{user * layers[layer] / total:>9.3f}" for layer in ORDER)
            print(
                f"{'':<15} {name:<8} {result['rps']:>7.0f} {shares} {system:>9.3f} "
                f"{user + system:>9.3f}",
                flush=True,
            )
            for frame, count in frames.most_common(args.top):
                print(f"{'':<24} {user * count / total:>7.3f}  {frame}")


def record(py_spy: os.PathLike, server_pid: int, rate: int, duration: int, output: str) -> None:
    """py-spy samples the workers of the server (make → gunicorn master → workers) for the
    duration of a wrk run."""
    master = next(pid for pid in process_group(server_pid) if parent(pid) == server_pid)
    subprocess.run(
        [py_spy, "record", "--gil", "--nonblocking", "--subprocesses", "--format", "raw",
         "--rate", str(rate), "--duration", str(duration), "--pid", str(master),
         "--output", output],
        check=True,
        capture_output=True,
    )  # fmt: skip


def parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def charged(path: str) -> tuple[collections.Counter, collections.Counter]:
    """Samples per layer and per charged frame, from py-spy's raw (collapsed stack) output."""
    layers: collections.Counter = collections.Counter()
    frames: collections.Counter = collections.Counter()
    with open(path) as raw:
        for line in raw:
            stack, _, count = line.rstrip().rpartition(" ")
            layer, frame = charge(stack.split(";"))
            layers[layer] += int(count)
            frames[frame] += int(count)
    return layers, frames


def charge(stack: list[str]) -> tuple[str, str]:
    """The layer and the frame a sample is charged to: its innermost frame that is not the
    standard library's."""
    for frame in reversed(stack):
        match = FRAME.match(frame)
        if match is None:  # py-spy's process and thread entries
            continue
        file = match["file"]
        layer = LAYERS.get(file.split("/", 1)[0])
        if layer == "django" and file.startswith("django/db/"):
            layer = "django db"
        if layer:
            return layer, f"{match['function']} ({file})"
    return "other", stack[-1]


if __name__ == "__main__":
    sys.exit(main())

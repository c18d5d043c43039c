"""Shared pieces of the HTTP benchmarks: wrk runs, server processes, a Redis URL."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WRK_SCRIPT = """
local paths = {}
for line in io.lines("%(paths)s") do paths[#paths + 1] = line end
-- Each thread draws its own sequence: with one seed for all, every path would be asked for once per
-- thread, in step, and the second ask would find what the first left (a capped offer, a warm cache).
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end
init = function(args)
  math.randomseed(%(seed)d + 7919 * thread_number)
end
local headers = {}
%(headers)s
request = function()
  return wrk.format("GET", paths[math.random(#paths)], headers)
end
done = function(summary, latency, requests)
  io.write(string.format("BENCH requests=%%d duration_us=%%d p50_us=%%d p99_us=%%d errors=%%d non2xx=%%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
"""


@dataclass(frozen=True)
class LoadResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    non2xx: int

    def line(self, label: str) -> str:
        return (f"{label:<28} {self.rps:>10,.0f} req/s   p50 {self.p50_ms:6.2f} ms   p99 {self.p99_ms:6.2f} ms   "
                f"errors {self.errors}  non-2xx {self.non2xx}")


def ensure_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk:
        return wrk
    print("wrk is missing: installing it from Debian's packages", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    return shutil.which("wrk") or sys.exit("wrk could not be installed")


def run_wrk(base_url: str, paths: list[str], connections: int, duration_s: int, threads: int = 2,
            headers: dict[str, str] | None = None, seed: int = 1) -> LoadResult:
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory() as tmp:
        paths_file = Path(tmp) / "paths.txt"
        paths_file.write_text("\n".join(paths) + "\n")
        header_lines = "\n".join(f'headers["{k}"] = "{v}"' for k, v in (headers or {}).items())
        script = Path(tmp) / "bench.lua"
        script.write_text(WRK_SCRIPT % {"paths": paths_file, "seed": seed, "headers": header_lines})
        out = subprocess.run([wrk, f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "-s", str(script),
                              base_url], capture_output=True, text=True, check=True).stdout
    match = re.search(r"BENCH requests=(\d+) duration_us=(\d+) p50_us=(\d+) p99_us=(\d+) errors=(\d+) "
                      r"non2xx=(\d+)", out)
    if not match:
        raise RuntimeError(f"could not parse wrk output:\n{out}")
    requests, duration, p50, p99, errors, non2xx = map(int, match.groups())
    return LoadResult(requests / (duration / 1e6), p50 / 1000, p99 / 1000, errors, non2xx)


@dataclass(frozen=True)
class RunningServer:
    url: str
    pid: int  # also its process group: the supervisor and every worker

    def cpu_seconds(self) -> float:
        """CPU time used so far by every process of the server's group (Linux /proc)."""
        total = 0.0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # the process ended while being read
            if int(fields[2]) == self.pid:  # process group
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total


def redis_cpu_seconds(url: str) -> float:
    import redis

    client = redis.Redis.from_url(url)
    try:
        info = client.info("cpu")
    finally:
        client.close()
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


@contextmanager
def server(app: str, port: int, workers: int, env: dict[str, str] | None = None, ready_path: str = "/health/live"):
    """uvicorn as production runs it (uvloop, httptools, no access log), on a factory import string."""
    command = [sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
               "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **(env or {})}, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{ready_path}", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server {app} did not become ready on port {port}")
            time.sleep(0.2)
        time.sleep(1.0)  # let every worker finish its lifespan start-up
        yield RunningServer(f"http://127.0.0.1:{port}", process.pid)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)

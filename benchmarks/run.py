"""Measure nomadtls side by side with python-nomad 2.1.0 and the floors it cannot beat
(`import requests`, `import typer`, a bare requests Session, a raw urllib3 PoolManager),
all against the same local TLS agent, and judge the ratios against the project's targets.

Run it from a clone with `python3 benchmarks/run.py`. The first run makes a scratch
virtual environment under `bench-env/` (git ignores it) holding python-nomad 2.1.0 and this
project, built from the working tree; later runs reinstall the project only when its files
changed. Every command runs in its own process; the agent runs in another, so a row's CPU
time and peak memory (taken from `os.wait4`) are the client's alone. The compared commands
take turns (A B A B ...) so that drift on the machine hits them alike. Timings are printed,
never asserted: speed is judged here, not in the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "benchmarks"
ENV_DIR = ROOT / "bench-env"
VENV = ENV_DIR / "venv"
STAMP = ENV_DIR / "installed-tree.sha256"
PEER = "python-nomad==2.1.0"

# Where the project's installed copy comes from: a change to any of these reinstalls it.
PROJECT_FILES = ("setup.cfg", "pyproject.toml", "README.md", "nomadtls", "cli")

FEW_JOBS = 0  # 0 asks the agent for its sample cluster (a handful of jobs)
MANY_JOBS = 20_000
REQUESTS_PER_LOOP = 1_000
WARM_UP_REQUESTS = 50

# Runs per row in one benchmark: sized so that the whole run takes a few minutes on two
# busy cores. `--quick` divides them for a smoke run.
REPEATS = {"start-up": 21, "many": 9, "keep-alive": 7}

PYTHON_NOMAD_ONE_LINER = (
    "import nomad, sys; h, p, ca = sys.argv[1:]; "
    "print(len(nomad.Nomad(host=h, port=int(p), secure=True, verify=ca).jobs.get_jobs()))"
)


# ----------------------------------------------------------------------------------------
# Pure helpers (tests/test_benchmark_harness.py checks them)

def median(values: list[float]) -> float:
    """The middle value of a non-empty list, or the mean of the two middle ones."""
    if not values:
        raise ValueError("median of no values")
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing or the denominator is 0."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def verdict(value: float | None, limit: float) -> str:
    """"pass" when a ratio is at most its limit, "FAIL" above it, "not run" without one."""
    if value is None:
        return "not run"
    return "pass" if value <= limit else "FAIL"


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """Render rows as a plain-text table: the first column left-aligned, the others
    right-aligned, columns two spaces apart, a rule of dashes under the headers."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row)]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:])]
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def number(value: float | None, digits: int = 1) -> str:
    """A figure for the table, or a dash where there is none."""
    return "-" if value is None else f"{value:.{digits}f}"


# ----------------------------------------------------------------------------------------
# The scratch environment

def tree_digest(root: Path = ROOT, names=PROJECT_FILES) -> str:
    """A digest of the project's installable files, to tell when the copy is stale."""
    digest = hashlib.sha256()
    for name in names:
        path = root / name
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in files:
            if file.is_file() and "__pycache__" not in file.parts:
                digest.update(str(file.relative_to(root)).encode() + b"\0")
                digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()


def venv_bin(name: str) -> Path:
    return VENV / "bin" / name


def pip(*args: str) -> None:
    """Run the scratch environment's pip quietly; its output is shown only if it fails."""
    argv = [str(venv_bin("python")), "-m", "pip", "--disable-pip-version-check", "-q", *args]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"pip {' '.join(args)} failed (exit {proc.returncode})")


def ensure_env() -> None:
    """Make the scratch venv with python-nomad 2.1.0 and this project, or refresh the
    project's copy when its files changed since the last install."""
    fresh = not venv_bin("python").exists()
    digest = tree_digest()
    if not fresh and STAMP.exists() and STAMP.read_text() == digest:
        return
    if fresh:
        print(f"making the scratch environment {VENV.relative_to(ROOT)} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    else:
        print("the project changed: reinstalling it into the scratch environment ...",
              flush=True)
    # Build from a copy: a build in the tree would leave build/ behind, and a module
    # deleted since the last build could ride along from there into the wheel.
    with tempfile.TemporaryDirectory(prefix="nomadtls-build-") as tmp:
        source = Path(tmp) / "nomadtls"
        for name in PROJECT_FILES:
            if (ROOT / name).is_dir():
                shutil.copytree(ROOT / name, source / name,
                                ignore=shutil.ignore_patterns("__pycache__"))
            else:
                source.mkdir(exist_ok=True)
                shutil.copy2(ROOT / name, source / name)
        pip("install", PEER, str(source))
        if not fresh:
            pip("install", "--force-reinstall", "--no-deps", str(source))
    STAMP.write_text(digest)


# Variables that would change what a measured command does: its settings, the interpreter's
# own, a CA bundle that requests would put in place of the cluster CA, a proxy.
STRIPPED_PREFIXES = ("NOMAD_", "PYTHON", "VIRTUAL_ENV")
STRIPPED = {"REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR",
            "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"}


def clean_environ(**extra: str) -> dict[str, str]:
    """The caller's environment without the variables above, plus `extra`, so that no
    stray setting reaches a measured command."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(STRIPPED_PREFIXES) and k.upper() not in STRIPPED}
    env.update(extra)
    return env


# ----------------------------------------------------------------------------------------
# Measuring one process

@dataclass
class Sample:
    wall: float  # seconds
    cpu: float  # user + system seconds of the child
    peak_kib: int  # its peak resident set size


def run_once(argv: list[str], env: dict[str, str]) -> Sample:
    """Run `argv` to the end; its wall clock, CPU time and peak RSS come from the child
    alone (os.wait4), not from this process or the agent."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=ENV_DIR, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return reap(proc, argv, start)


def reap(proc: subprocess.Popen, argv: list[str], start: float) -> Sample:
    """Wait for a child and take its usage from the kernel; a failure ends the run."""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, argv)
    return Sample(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)


def probe(argv: list[str], env: dict[str, str]) -> tuple[bool, str]:
    """Run a command once, outside the measurement, to learn whether it works at all and
    what it prints; a row whose command fails is reported as not run, with the reason."""
    try:
        proc = subprocess.run(argv, env=env, cwd=ENV_DIR, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    if proc.returncode:
        lines = proc.stderr.decode(errors="replace").strip().splitlines() or ["no output"]
        return False, f"exit {proc.returncode}: {lines[-1][:160]}"
    return True, proc.stdout.decode(errors="replace")


# ----------------------------------------------------------------------------------------
# The agent, in a process of its own

class Agent:
    """benchmarks/agent.py serving a stand-in agent over TLS; `info` holds what it printed
    on start: address, host, port, ca_file, server_name, jobs."""

    def __init__(self, jobs: int, directory: Path) -> None:
        self.jobs = jobs
        self.directory = directory
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}
        self.error = ""

    def __enter__(self) -> "Agent":
        argv = [str(venv_bin("python")), str(HERE / "agent.py"), "--jobs", str(self.jobs),
                "--directory", str(self.directory)]
        self.directory.mkdir(parents=True, exist_ok=True)
        log = self.directory / "agent.log"  # a file, so that no pipe can fill and block it
        with open(log, "wb") as stderr:
            self.proc = subprocess.Popen(argv, env=clean_environ(), cwd=ENV_DIR,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=stderr)
        line = self.proc.stdout.readline()
        if line:
            self.info = json.loads(line)
        else:
            self.proc.wait()
            lines = log.read_text(errors="replace").strip().splitlines()
            self.error = lines[-1] if lines else f"agent exited {self.proc.returncode}"
        return self

    def __exit__(self, *exc_info) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(OSError):
            self.proc.stdin.close()  # the agent stops when its stdin closes
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    @property
    def up(self) -> bool:
        return bool(self.info)


# ----------------------------------------------------------------------------------------
# The rows

@dataclass
class Row:
    key: str
    label: str
    argv: list[str]
    env: dict[str, str]
    check: object = None  # callable(stdout) -> error text or "" ; None: any output
    samples: list[Sample] = field(default_factory=list)
    results: list[dict] = field(default_factory=list)  # keep-alive loops report here
    skipped: str = ""

    def wall_ms(self) -> float | None:
        return median([s.wall for s in self.samples]) * 1e3 if self.samples else None

    def cpu_ms(self) -> float | None:
        return median([s.cpu for s in self.samples]) * 1e3 if self.samples else None

    def peak_mib(self) -> float | None:
        return median([s.peak_kib for s in self.samples]) / 1024 if self.samples else None

    def cpu_us_per_request(self) -> float | None:
        if not self.results:
            return None
        return median([r["cpu_per_request"] for r in self.results]) * 1e6

    def connections(self) -> str:
        return ",".join(sorted({str(r["connections"]) for r in self.results})) or "-"


def expect_lines(count: int):
    """A check that a command printed `count` job lines under one header line."""
    def check(stdout: str) -> str:
        found = len([line for line in stdout.splitlines() if line.strip()]) - 1
        return "" if found == count else f"expected {count} job lines, saw {found}"
    return check


def expect_count(count: int):
    """A check that the python-nomad one-liner printed the number of jobs."""
    def check(stdout: str) -> str:
        return "" if stdout.strip() == str(count) else f"expected {count}, saw {stdout!r}"
    return check


def tls_rows(suffix: str, agent: Agent) -> list[Row]:
    """`nomadtls status` and the python-nomad one-liner against one agent, both by a name
    the agent's certificate holds and both verifying it against the cluster CA."""
    where = f"{agent.jobs:,} jobs" if agent.jobs else "few jobs"
    status = Row(f"status{suffix}", f"nomadtls status ({where})", [], {})
    peer = Row(f"python-nomad{suffix}", f"python-nomad one-liner ({where})", [], {})
    if not agent.up:
        status.skipped = peer.skipped = f"agent did not start: {agent.error}"
        return [status, peer]

    info = agent.info
    status.argv = [str(venv_bin("nomadtls")), "status"]
    status.env = clean_environ(NOMAD_ADDR=info["address"], NOMAD_CACERT=info["ca_file"],
                               NOMAD_TLS_SERVER_NAME=info["server_name"])
    status.check = expect_lines(info["jobs"])
    peer.argv = [str(venv_bin("python")), "-c", PYTHON_NOMAD_ONE_LINER, info["host"],
                 str(info["port"]), info["ca_file"]]
    peer.env = clean_environ()
    peer.check = expect_count(info["jobs"])
    return [status, peer]


def startup_rows(agent: Agent) -> list[Row]:
    py = str(venv_bin("python"))
    env = clean_environ()
    rows = [
        Row("pass", "python -c pass (reference)", [py, "-c", "pass"], env),
        Row("requests", "python -c 'import requests'", [py, "-c", "import requests"], env),
        Row("typer", "python -c 'import typer'", [py, "-c", "import typer"], env),
        Row("import", "python -c 'import nomadtls'", [py, "-c", "import nomadtls"], env),
        Row("help", "nomadtls status -h", [str(venv_bin("nomadtls")), "status", "-h"], env,
            check=lambda out: "" if "Usage" in out else "no usage line"),
    ]
    return rows + tls_rows("", agent)


KEEP_ALIVE_CLIENTS = {
    "nomadtls": "nomadtls NomadClient",
    "python-nomad": "python-nomad Nomad",
    "requests": "bare requests Session",
    "urllib3": "raw urllib3 PoolManager",
}


def keep_alive_rows(agent: Agent) -> list[Row]:
    rows = []
    for client, label in KEEP_ALIVE_CLIENTS.items():
        key = f"keep-alive {client}"
        if not agent.up:
            rows.append(Row(key, label, [], {}, skipped=f"agent did not start: {agent.error}"))
            continue
        info = agent.info
        argv = [str(venv_bin("python")), str(HERE / "keepalive.py"), client,
                "--host", info["host"], "--port", str(info["port"]),
                "--ca-file", info["ca_file"], "--server-name", info["server_name"],
                "--requests", str(REQUESTS_PER_LOOP), "--warm-up", str(WARM_UP_REQUESTS)]
        rows.append(Row(key, label, argv, clean_environ(), check=keep_alive_check))
    return rows


def keep_alive_check(stdout: str) -> str:
    try:
        result = json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return f"no result line in {stdout[-200:]!r}"
    return "" if result.get("jobs", 0) > 0 else "the loop fetched no jobs"


# ----------------------------------------------------------------------------------------
# Running them, A B A B ...

def measure(rows: list[Row], repeats: int, *, keep_alive: bool = False) -> None:
    """Probe each row once (a warm-up that also checks its output), then run the rows that
    work in turn, `repeats` rounds."""
    live = []
    for row in rows:
        if row.skipped:
            continue
        ok, output = probe(row.argv, row.env)
        problem = "" if not ok or row.check is None else row.check(output)
        if not ok or problem:
            row.skipped = output if not ok else problem
            print(f"  {row.label}: not run ({row.skipped})", flush=True)
            continue
        live.append(row)

    for round_no in range(repeats):
        for row in live:
            if keep_alive:
                sample, result = run_loop(row)
                row.results.append(result)
            else:
                sample = run_once(row.argv, row.env)
            row.samples.append(sample)
        if sys.stdout.isatty():
            print(f"  round {round_no + 1}/{repeats}", end="\r", flush=True)
    if sys.stdout.isatty():
        print(" " * 30, end="\r")


def run_loop(row: Row) -> tuple[Sample, dict]:
    """A keep-alive loop reports its own CPU per request on its last stdout line."""
    start = time.perf_counter()
    proc = subprocess.Popen(row.argv, env=row.env, cwd=ENV_DIR, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    stdout = proc.stdout.read()
    proc.stdout.close()
    sample = reap(proc, row.argv, start)
    return sample, json.loads(stdout.decode().strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------
# Reporting

TARGETS = [
    # (what, numerator key, denominator key, metric, limit)
    ("import nomadtls / import requests", "import", "requests", "wall", 1.1),
    ("nomadtls status -h / import typer", "help", "typer", "wall", 1.3),
    ("status, few jobs / python-nomad", "status", "python-nomad", "wall", 1.3),
    ("status, 20,000 jobs / python-nomad", "status 20k", "python-nomad 20k", "wall", 1.3),
    ("peak memory, 20,000 jobs / python-nomad", "status 20k", "python-nomad 20k", "peak",
     1.5),
    ("CPU per request / python-nomad", "keep-alive nomadtls", "keep-alive python-nomad",
     "per-request", 0.8),
    ("CPU per request / raw urllib3", "keep-alive nomadtls", "keep-alive urllib3",
     "per-request", 1.5),
]


def metric(row: Row | None, kind: str) -> float | None:
    if row is None:
        return None
    return {"wall": row.wall_ms, "cpu": row.cpu_ms, "peak": row.peak_mib,
            "per-request": row.cpu_us_per_request}[kind]()


def machine() -> dict[str, str]:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "python": venv_python_version(),
        "os": platform.platform(),
    }


def venv_python_version() -> str:
    """The version of the interpreter every row runs on: the scratch venv's."""
    with contextlib.suppress(OSError):
        for line in (VENV / "pyvenv.cfg").read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() in ("version", "version_info"):
                return value.strip()
    return platform.python_version()


def revision() -> str:
    """The commit measured, and whether the project's files differ from it."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *PROJECT_FILES],
                               cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return commit + (" with uncommitted changes" if dirty else "")


def load_average() -> str:
    with contextlib.suppress(OSError):
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    return "unknown"


def report(rows: list[Row], started: str, load_before: str, repeats: dict) -> str:
    by_key = {row.key: row for row in rows}
    info = machine()
    out = [
        f"nomadtls benchmark, {started}, nomadtls at {revision()}",
        f"machine: {info['cpu']}, {info['cores']} cores; Python {info['python']}; "
        f"{info['os']}",
        f"load average (1, 5, 15 min): {load_before} before, {load_average()} after",
        f"runs per row: start-up {repeats['start-up']}, 20,000 jobs {repeats['many']}, "
        f"keep-alive loops {repeats['keep-alive']} (medians below)",
        "",
    ]
    processes = [[row.label or row.key, str(len(row.samples)), number(row.wall_ms()),
                  number(row.cpu_ms()), number(row.peak_mib())]
                 for row in rows if not row.key.startswith("keep-alive") and not row.skipped]
    out.append(format_table(["command", "runs", "wall ms", "CPU ms", "peak MiB"], processes))
    loops = [[row.label, str(len(row.results)), number(row.cpu_us_per_request()),
              row.connections()]
             for row in rows if row.key.startswith("keep-alive") and not row.skipped]
    if loops:
        out += ["", f"{REQUESTS_PER_LOOP:,} keep-alive GET /v1/jobs on one client, after "
                    f"{WARM_UP_REQUESTS} to warm up:"]
        out.append(format_table(["client", "runs", "CPU us/request", "TLS connections"],
                                loops))
    skipped = [row for row in rows if row.skipped]
    if skipped:
        out += ["", "not run:"]
        out += [f"  {row.label or row.key}: {row.skipped}" for row in skipped]

    judged = []
    for what, top, bottom, kind, limit in TARGETS:
        value = ratio(metric(by_key.get(top), kind), metric(by_key.get(bottom), kind))
        cpu = None
        if kind == "wall":
            cpu = ratio(metric(by_key.get(top), "cpu"), metric(by_key.get(bottom), "cpu"))
        judged.append([what, number(value, 3), f"<= {limit}", verdict(value, limit),
                       number(cpu, 3)])
    out += ["", format_table(["target", "ratio", "limit", "result", "CPU-time ratio"],
                             judged),
            "Ratios of medians. The wall-clock ratio is judged; the CPU-time ratio beside it",
            "moves less when other work shares the machine."]
    return "\n".join(out)


# ----------------------------------------------------------------------------------------
# Profiling, on request

PROFILED = ("import", "help", "status", "python-nomad", "status 20k", "python-nomad 20k",
            "keep-alive nomadtls", "keep-alive python-nomad")
CONSOLE_SCRIPT = "from nomadtls_cli.main import run; run()\n"


def as_script(row: Row, directory: Path) -> list[str]:
    """A row's command as `script args...`, for `-X importtime` and `-m cProfile`."""
    name = row.key.replace(" ", "-")
    if row.argv[1] == "-c":
        code, args = row.argv[2] + "\n", row.argv[3:]
    elif row.argv[1].endswith(".py"):
        return row.argv[1:]
    else:  # the console script
        code, args = CONSOLE_SCRIPT, row.argv[1:]
    script = directory / f"{name}.py"
    script.write_text(code)
    return [str(script), *args]


def import_summary(stderr: str, most: int = 30) -> str:
    """The `-X importtime` lines in order of cumulative time, the costliest first."""
    entries = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, cumulative, name = line[len("import time:"):].split("|", 2)
        entries.append((int(cumulative), int(own), name.rstrip()))
    entries.sort(reverse=True)
    lines = [f"{'cumulative us':>13}  {'self us':>8}  module"]
    lines += [f"{c:>13}  {o:>8}  {n}" for c, o, n in entries[:most]]
    return "\n".join(lines) + "\n"


def profile(rows: list[Row], directory: Path) -> None:
    """Write where the nomadtls commands (and python-nomad's, to compare) spend their time:
    `<row>.imports.txt` from `-X importtime`, `<row>.prof` and `<row>.cprofile.txt` from
    cProfile, into `directory`."""
    import io
    import pstats

    directory.mkdir(parents=True, exist_ok=True)
    py = str(venv_bin("python"))
    for row in rows:
        if row.key not in PROFILED or row.skipped or not row.argv:
            continue
        name = row.key.replace(" ", "-")
        command = as_script(row, directory)
        proc = subprocess.run([py, "-X", "importtime", *command], env=row.env, cwd=directory,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        (directory / f"{name}.imports.txt").write_text(import_summary(proc.stderr))

        prof = directory / f"{name}.prof"
        subprocess.run([py, "-m", "cProfile", "-o", str(prof), *command], env=row.env,
                       cwd=directory, stdout=subprocess.DEVNULL, check=True)
        text = io.StringIO()
        stats = pstats.Stats(str(prof), stream=text).strip_dirs()
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(25)
        (directory / f"{name}.cprofile.txt").write_text(text.getvalue())
        print(f"  {row.label}: {name}.imports.txt, {name}.cprofile.txt")
    print(f"profiles are in {directory}")


# ----------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a third of the runs: a smoke test of the harness, not a record")
    parser.add_argument("--profile", metavar="DIR", type=Path,
                        help="measure nothing: write importtime and cProfile output of the "
                             "nomadtls commands to DIR")
    args = parser.parse_args(argv)

    repeats = dict(REPEATS)
    if args.quick:
        repeats = {k: max(2, v // 3) for k, v in repeats.items()}

    ensure_env()
    started = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_before = load_average()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="nomadtls-bench-") as tmp:
        with Agent(FEW_JOBS, Path(tmp) / "few") as few, \
                Agent(MANY_JOBS, Path(tmp) / "many") as many:
            for agent in (few, many):
                if agent.up:
                    print(f"agent with {agent.info['jobs']:,} jobs at {agent.info['address']}")
                else:
                    print(f"agent with {agent.jobs or 'a few'} jobs did not start: "
                          f"{agent.error}")

            phases = [
                ("start-up rows", startup_rows(few), repeats["start-up"], False),
                ("20,000-job rows", tls_rows(" 20k", many), repeats["many"], False),
                ("keep-alive loops", keep_alive_rows(few), repeats["keep-alive"], True),
            ]
            for title, phase, count, loops in phases:
                count = 0 if args.profile else count
                print(f"{title}, {count} rounds ...", flush=True)
                measure(phase, count, keep_alive=loops)
                rows += phase
            if args.profile:
                profile(rows, args.profile.resolve())
                return 0

    print()
    print(report(rows, started, load_before, repeats))
    return 0


if __name__ == "__main__":
    sys.exit(main())

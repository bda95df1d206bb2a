"""Text views of Nomad objects as `nomad status` prints them: tables with columns two
spaces apart, `key = value` blocks with aligned `=`, section titles, short IDs and ISO 8601
dates. Every view takes the decoded JSON and returns text; nothing here does I/O.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Iterable, Mapping, Sequence, TextIO

__all__ = ["Paint", "use_color", "table", "key_values", "iso_time", "iso_times", "short_id",
           "job_list", "job_detail", "node_detail", "alloc_detail", "eval_detail",
           "deployment_detail", "json_text", "NONE"]

NONE = "<none>"  # what an empty cell or value reads as
SHORT = 8  # UUIDs are shown by their first 8 characters unless -verbose
_ISO = "%Y-%m-%dT%H:%M:%SZ"

_GOOD = {"running", "successful", "complete", "ready", "eligible", "healthy"}
_WAITING = {"pending", "blocked", "paused", "initializing", "queued", "draining"}
_BAD = {"failed", "dead", "lost", "down", "cancelled", "unhealthy", "ineligible"}
_CODES = {"bold": "1", "green": "32", "yellow": "33", "red": "31"}


def use_color(no_color: bool, force_color: bool, stream: TextIO | None = None,
              environ: Mapping[str, str] | None = None) -> bool:
    """Whether to colour output written to `stream` (stdout by default).

    `no_color` and `force_color` are the resolved settings (the flags, then
    NOMAD_CLI_NO_COLOR and NOMAD_CLI_FORCE_COLOR). Off wins: -no-color, its variable or
    NO_COLOR (any non-empty value) turn colour off even when forcing it; otherwise colour is
    on when forced or when the stream is a terminal.
    """
    env = os.environ if environ is None else environ
    if no_color or env.get("NO_COLOR"):
        return False
    if force_color:
        return True
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Paint:
    """ANSI styling that is a no-op when colour is off."""

    def __init__(self, enabled: bool = False) -> None:
        self.enabled = enabled

    def _wrap(self, text: str, style: str) -> str:
        return f"\x1b[{_CODES[style]}m{text}\x1b[0m" if self.enabled else text

    def title(self, text: str) -> str:
        return self._wrap(text, "bold")

    def status(self, text: str) -> str:
        """A status word in green, yellow or red by what it means; others unchanged."""
        word = text.split(" ", 1)[0].lower()
        if word in _GOOD:
            return self._wrap(text, "green")
        if word in _WAITING:
            return self._wrap(text, "yellow")
        if word in _BAD:
            return self._wrap(text, "red")
        return text


def _cell(value: Any) -> str:
    if value.__class__ is str:  # the common case first: lists can have 20,000 rows
        return value or NONE
    if value is None or value == []:
        return NONE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    return str(value)


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Columns left-aligned, two spaces apart, empty cells as <none>; no trailing space."""
    lines = [list(header)] + [[_cell(value) for value in row] for row in rows]
    return _aligned(list(zip(*lines)))


def _aligned(columns: Sequence[Sequence[str]]) -> str:
    """Columns of text cells, each with its header first, as lines of aligned text: every
    column but the last is padded to its longest cell, two spaces apart."""
    widths = [max(map(len, column)) for column in columns[:-1]]
    template = "  ".join(f"{{:<{width}}}" for width in widths) + "  {}"
    return "\n".join([line.rstrip() for line in map(template.format, *columns)])


def key_values(pairs: Sequence[tuple[str, Any]], paint: Paint | None = None,
               status_keys: Iterable[str] = ()) -> str:
    """`key = value` lines with the `=` aligned; values of `status_keys` are coloured."""
    paint = paint or Paint()
    width = max(len(key) for key, _ in pairs)
    colored = set(status_keys)
    lines = []
    for key, value in pairs:
        text = _cell(value)
        if key in colored:
            text = paint.status(text)
        lines.append(f"{key.ljust(width)} = {text}")
    return "\n".join(lines)


def iso_time(value: Any) -> str:
    """A Nomad time as ISO 8601 in UTC (2023-11-14T22:13:20Z).

    Nomad sends times as nanoseconds since the epoch, or as RFC 3339 text; zero, Go's zero
    time and nothing all read as <none>.
    """
    if value.__class__ is int and value > 0:
        return time.strftime(_ISO, time.gmtime(value // 1_000_000_000))
    if value in (None, "", 0) or str(value).startswith("0001-01-01"):
        return NONE
    if isinstance(value, str):
        from datetime import datetime, timezone

        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(timezone.utc)
        return parsed.strftime(_ISO)
    return time.strftime(_ISO, time.gmtime(int(value) // 1_000_000_000))


# "HH:MM:" for each minute of a day and "SSZ" for each second of a minute, made on first use.
_CLOCK: tuple[list[str], list[str]] | None = None


def iso_times(values: Iterable[Any]) -> list[str]:
    """`iso_time` of each value, for columns of tens of thousands: a time in nanoseconds
    costs one `time.strftime` per day rather than one per value."""
    global _CLOCK
    if _CLOCK is None:
        _CLOCK = ([f"{hour:02}:{minute:02}:" for hour in range(24) for minute in range(60)],
                  [f"{second:02}Z" for second in range(60)])
    minutes, seconds = _CLOCK
    days: dict[int, str] = {}
    out = []
    for value in values:
        if value.__class__ is int and value > 0:
            day, second = divmod(value // 1_000_000_000, 86_400)
            date = days.get(day)
            if date is None:
                date = days[day] = time.strftime("%Y-%m-%dT", time.gmtime(day * 86_400))
            out.append(date + minutes[second // 60] + seconds[second % 60])
        else:
            out.append(iso_time(value))
    return out


def short_id(value: Any, verbose: bool = False) -> str:
    """A UUID cut to its first 8 characters, unless `verbose`."""
    text = _cell(value)
    return text if verbose or text == NONE else text[:SHORT]


def _section(title: str, body: str, paint: Paint) -> str:
    return f"\n{paint.title(title)}\n{body}"


# -- the job list ------------------------------------------------------------------------

def _job_status(stub: Mapping[str, Any]) -> str:
    status = stub.get("Status") or NONE
    return f"{status} (stopped)" if stub.get("Stop") else status


def job_list(jobs: Sequence[Mapping[str, Any]], all_namespaces: bool = False) -> str:
    """The job list of `nomad status`; a Namespace column follows ID when listing every
    namespace. No jobs reads `No running jobs`.

    Lists run to tens of thousands of jobs, so the cells are built as text column by
    column in one pass, rather than through `table`'s conversion of every cell.
    """
    if not jobs:
        return "No running jobs"
    ids, kinds, priorities, statuses, times = ["ID"], ["Type"], ["Priority"], ["Status"], []
    for stub in jobs:
        get = stub.get
        ids.append(get("ID") or NONE)
        kind = get("Type") or ""
        if get("Periodic"):
            kind += "/periodic"
        if get("ParameterizedJob"):
            kind += "/parameterized"
        kinds.append(kind or NONE)
        priority = get("Priority")
        priorities.append(NONE if priority is None else str(priority))
        statuses.append(_job_status(stub))
        times.append(get("SubmitTime"))
    columns = [ids, kinds, priorities, statuses, ["Submit Date", *iso_times(times)]]
    if all_namespaces:
        columns.insert(1, ["Namespace", *[stub.get("Namespace") or NONE for stub in jobs]])
    return _aligned(columns)


# -- detail views ------------------------------------------------------------------------

_ALLOC_HEADER = ["ID", "Node ID", "Task Group", "Version", "Desired", "Status", "Created",
                 "Modified"]


def _alloc_rows(allocs: Sequence[Mapping[str, Any]], verbose: bool,
                by_job: bool = False) -> list[list[str]]:
    """Allocation rows; the second column is the node, or the job on a node's view."""
    rows = []
    for alloc in allocs:
        where = alloc.get("JobID") if by_job else short_id(alloc.get("NodeID"), verbose)
        rows.append([short_id(alloc.get("ID"), verbose), where, alloc.get("TaskGroup"),
                     alloc.get("JobVersion"), alloc.get("DesiredStatus"),
                     alloc.get("ClientStatus"),
                     iso_time(alloc.get("CreateTime")), iso_time(alloc.get("ModifyTime"))])
    return rows


def _deployed_table(deployment: Mapping[str, Any]) -> str:
    groups = deployment.get("TaskGroups") or {}
    canaries = any((state or {}).get("DesiredCanaries") for state in groups.values())
    header = ["Task Group"]
    if canaries:
        header += ["Promoted", "Desired", "Canaries"]
    else:
        header += ["Desired"]
    header += ["Placed", "Healthy", "Unhealthy", "Progress Deadline"]
    rows = []
    for name, state in sorted(groups.items()):
        state = state or {}
        row = [name]
        if canaries:
            row += [state.get("Promoted"), state.get("DesiredTotal"),
                    state.get("DesiredCanaries")]
        else:
            row += [state.get("DesiredTotal")]
        row += [state.get("PlacedAllocs"), state.get("HealthyAllocs"),
                state.get("UnhealthyAllocs"), iso_time(state.get("RequireProgressBy"))]
        rows.append(row)
    return table(header, rows)


def job_detail(data: Mapping[str, Any], verbose: bool = False,
               paint: Paint | None = None) -> str:
    """`nomad job status <id>`: the job, its summary (or its children's, for a periodic or
    parameterized job), its latest deployment and its allocations.

    `data` holds "Job", "Summary", "LatestDeployment" and "Allocations" as the agent sent
    them; any but "Job" may be None.
    """
    paint = paint or Paint()
    job = data["Job"]
    periodic = bool(job.get("Periodic"))
    parameterized = bool(job.get("ParameterizedJob"))
    pairs = [("ID", job.get("ID")), ("Name", job.get("Name")),
             ("Submit Date", iso_time(job.get("SubmitTime"))), ("Type", job.get("Type")),
             ("Priority", job.get("Priority")), ("Datacenters", job.get("Datacenters")),
             ("Namespace", job.get("Namespace")), ("Node Pool", job.get("NodePool")),
             ("Status", _job_status(job)), ("Periodic", periodic),
             ("Parameterized", parameterized)]
    if periodic:
        pairs.append(("Cron", (job.get("Periodic") or {}).get("Spec")))
    parts = [key_values(pairs, paint, status_keys=["Status"])]

    summary = data.get("Summary") or {}
    if periodic or parameterized:
        children = summary.get("Children") or {}
        parts.append(_section("Children Job Summary", table(
            ["Pending", "Running", "Dead"],
            [[children.get("Pending", 0), children.get("Running", 0),
              children.get("Dead", 0)]]), paint))
    else:
        groups = summary.get("Summary") or {}
        header = ["Task Group", "Queued", "Starting", "Running", "Failed", "Complete",
                  "Lost", "Unknown"]
        rows = [[name] + [(counts or {}).get(column, 0) for column in header[1:]]
                for name, counts in sorted(groups.items())]
        if rows:
            parts.append(_section("Summary", table(header, rows), paint))

    deployment = data.get("LatestDeployment")
    if deployment:
        parts.append(_section("Latest Deployment", key_values(
            [("ID", short_id(deployment.get("ID"), verbose)),
             ("Status", deployment.get("Status")),
             ("Description", deployment.get("StatusDescription"))],
            paint, status_keys=["Status"]), paint))
        parts.append(_section("Deployed", _deployed_table(deployment), paint))

    allocs = data.get("Allocations") or []
    if allocs:
        parts.append(_section("Allocations",
                              table(_ALLOC_HEADER, _alloc_rows(allocs, verbose)), paint))
    elif not (periodic or parameterized):
        parts.append(_section("Allocations", "No allocations placed", paint))
    return "\n".join(parts)


def _drivers(node: Mapping[str, Any]) -> list[str]:
    drivers = node.get("Drivers") or {}
    return sorted(name for name, info in drivers.items()
                  if (info or {}).get("Detected") and (info or {}).get("Healthy"))


def node_detail(data: Mapping[str, Any], verbose: bool = False,
                paint: Paint | None = None) -> str:
    """`nomad node status <id>`: the node and the allocations placed on it.

    `data` holds "Node" and "Allocations" as the agent sent them.
    """
    paint = paint or Paint()
    node = data["Node"]
    attributes = node.get("Attributes") or {}
    pairs = [("ID", short_id(node.get("ID"), verbose)), ("Name", node.get("Name")),
             ("Node Pool", node.get("NodePool")), ("Class", node.get("NodeClass")),
             ("DC", node.get("Datacenter")), ("Drain", bool(node.get("Drain"))),
             ("Eligibility", node.get("SchedulingEligibility")),
             ("Status", node.get("Status")), ("HTTP Address", node.get("HTTPAddr")),
             ("TLS Enabled", bool(node.get("TLSEnabled"))),
             ("Nomad Version", attributes.get("nomad.version")),
             ("Drivers", _drivers(node))]
    parts = [key_values(pairs, paint, status_keys=["Status", "Eligibility"])]
    allocs = data.get("Allocations") or []
    if allocs:
        header = ["ID", "Job ID"] + _ALLOC_HEADER[2:]
        parts.append(_section("Allocations",
                              table(header, _alloc_rows(allocs, verbose, by_job=True)), paint))
    else:
        parts.append(_section("Allocations", "No allocations placed", paint))
    return "\n".join(parts)


def alloc_detail(alloc: Mapping[str, Any], verbose: bool = False,
                 paint: Paint | None = None) -> str:
    """`nomad alloc status <id>`: the allocation, then each task's state and recent events."""
    paint = paint or Paint()
    health = (alloc.get("DeploymentStatus") or {}).get("Healthy")
    pairs = [("ID", short_id(alloc.get("ID"), verbose)),
             ("Eval ID", short_id(alloc.get("EvalID"), verbose)),
             ("Name", alloc.get("Name")),
             ("Node ID", short_id(alloc.get("NodeID"), verbose)),
             ("Node Name", alloc.get("NodeName")), ("Job ID", alloc.get("JobID")),
             ("Job Version", alloc.get("JobVersion")),
             ("Client Status", alloc.get("ClientStatus")),
             ("Client Description", alloc.get("ClientDescription")),
             ("Desired Status", alloc.get("DesiredStatus")),
             ("Desired Description", alloc.get("DesiredDescription")),
             ("Created", iso_time(alloc.get("CreateTime"))),
             ("Modified", iso_time(alloc.get("ModifyTime")))]
    if alloc.get("DeploymentID"):
        pairs += [("Deployment ID", short_id(alloc.get("DeploymentID"), verbose)),
                  ("Deployment Health", None if health is None
                   else ("healthy" if health else "unhealthy"))]
    parts = [key_values(pairs, paint, status_keys=["Client Status", "Desired Status"])]
    for task, state in sorted((alloc.get("TaskStates") or {}).items()):
        state = state or {}
        title = f'Task "{task}" is "{state.get("State") or "unknown"}"'
        events = [[iso_time(event.get("Time")), event.get("Type"),
                   event.get("DisplayMessage") or event.get("Message")]
                  for event in reversed(state.get("Events") or [])]
        body = (table(["Time", "Type", "Description"], events) if events
                else "No events recorded")
        parts.append(_section(title, f"Recent Events:\n{body}", paint))
    return "\n".join(parts)


def eval_detail(evaluation: Mapping[str, Any], verbose: bool = False,
                paint: Paint | None = None) -> str:
    """`nomad eval status <id>`: the evaluation, the task groups it failed to place, and
    the evaluations related to it when the agent sent them."""
    paint = paint or Paint()
    failed = evaluation.get("FailedTGAllocs") or {}
    pairs = [("ID", short_id(evaluation.get("ID"), verbose)),
             ("Create Time", iso_time(evaluation.get("CreateTime"))),
             ("Modify Time", iso_time(evaluation.get("ModifyTime"))),
             ("Status", evaluation.get("Status")),
             ("Status Description", evaluation.get("StatusDescription")),
             ("Type", evaluation.get("Type")),
             ("TriggeredBy", evaluation.get("TriggeredBy")),
             ("Job ID", evaluation.get("JobID")),
             ("Namespace", evaluation.get("Namespace")),
             ("Priority", evaluation.get("Priority")),
             ("Placement Failures", bool(failed))]
    if evaluation.get("NodeID"):
        pairs.append(("Node ID", short_id(evaluation.get("NodeID"), verbose)))
    if evaluation.get("DeploymentID"):
        pairs.append(("Deployment ID", short_id(evaluation.get("DeploymentID"), verbose)))
    parts = [key_values(pairs, paint, status_keys=["Status"])]
    if failed:
        rows = [[group, (metrics or {}).get("NodesEvaluated"),
                 (metrics or {}).get("NodesFiltered"), (metrics or {}).get("NodesExhausted"),
                 (metrics or {}).get("CoalescedFailures", 0) + 1]
                for group, metrics in sorted(failed.items())]
        parts.append(_section("Failed Placements", table(
            ["Task Group", "Nodes Evaluated", "Nodes Filtered", "Nodes Exhausted",
             "Failed Allocations"], rows), paint))
    related = evaluation.get("RelatedEvals") or []
    if related:
        rows = [[short_id(other.get("ID"), verbose), other.get("Priority"),
                 other.get("TriggeredBy"), other.get("Status"),
                 other.get("StatusDescription")] for other in related]
        parts.append(_section("Related Evaluations", table(
            ["ID", "Priority", "Triggered By", "Status", "Description"], rows), paint))
    return "\n".join(parts)


def deployment_detail(deployment: Mapping[str, Any], verbose: bool = False,
                      paint: Paint | None = None) -> str:
    """`nomad deployment status <id>`: the deployment and each task group's progress."""
    paint = paint or Paint()
    pairs = [("ID", short_id(deployment.get("ID"), verbose)),
             ("Job ID", deployment.get("JobID")),
             ("Job Version", deployment.get("JobVersion")),
             ("Namespace", deployment.get("Namespace")),
             ("Status", deployment.get("Status")),
             ("Description", deployment.get("StatusDescription"))]
    parts = [key_values(pairs, paint, status_keys=["Status"])]
    if deployment.get("TaskGroups"):
        parts.append(_section("Deployed", _deployed_table(deployment), paint))
    return "\n".join(parts)


# -- JSON --------------------------------------------------------------------------------

_SCALAR_TYPES = frozenset((str, int, float, bool, type(None)))


class _NotPlainJSON(Exception):
    """A value that decoded JSON never holds: `json_text` leaves it to the json module."""


def _refuse(value: Any) -> Any:
    raise _NotPlainJSON


def json_text(data: Any) -> str:
    """`data` exactly as `json.dumps(data, indent=4)` writes it, in about half the time for
    an answer of tens of thousands of objects.

    The json module writes indented output in Python, one generator step per value; here
    every list or object that holds only strings, numbers, booleans and nulls is written by
    its C encoder in one call (with the separator of its depth), and only the others are
    walked in Python. A value decoded JSON cannot hold (another type, a key that is not a
    string, nesting deeper than the recursion limit) is left to `json.dumps` as a whole.
    """
    import json
    from json import encoder

    if encoder.c_make_encoder is None:  # an interpreter without the C accelerator
        return json.dumps(data, indent=4)
    encode_string = encoder.encode_basestring_ascii
    flat_writers: dict[str, Any] = {}

    def flat(value: Any, inner: str) -> str:
        """A scalar, or a container of scalars whose items sit on lines starting `inner`."""
        write = flat_writers.get(inner)
        if write is None:
            write = flat_writers[inner] = encoder.c_make_encoder(
                None, _refuse, encode_string, None, ": ", "," + inner, False, False, True)
        return "".join(write(value, 0))

    scalar = {str: encode_string, int: int.__repr__, float: lambda value: flat(value, ""),
              bool: lambda value: "true" if value else "false",
              type(None): lambda value: "null"}.get

    def text(value: Any, indent: str) -> str:
        """`value` as it reads on its own lines, the first of them starting `indent`."""
        write = scalar(value.__class__)
        if write is not None:
            return write(value)
        inner = indent + "    "
        if value.__class__ is dict:
            if not value:
                return "{}"
            if _SCALAR_TYPES.issuperset(map(type, value.values())):
                return "{" + inner + flat(value, inner)[1:-1] + indent + "}"
            # Most values are scalars: each is written here, without a call of text().
            items = [encode_string(key) + ": "
                     + (write(item) if (write := scalar(item.__class__)) else text(item, inner))
                     for key, item in value.items()]
            return "{" + inner + ("," + inner).join(items) + indent + "}"
        if value.__class__ is list:
            if not value:
                return "[]"
            if _SCALAR_TYPES.issuperset(map(type, value)):
                return "[" + inner + flat(value, inner)[1:-1] + indent + "]"
            items = [text(item, inner) for item in value]
            return "[" + inner + ("," + inner).join(items) + indent + "]"
        raise _NotPlainJSON

    try:
        return text(data, "\n")
    except (_NotPlainJSON, TypeError, RecursionError):
        return json.dumps(data, indent=4)

"""A stand-in Nomad agent and a throw-away PKI, for testing code that talks to Nomad over
plain HTTP, TLS, mutual TLS or a unix socket without running Nomad.

    from nomadtls.testing import Cluster, LocalPKI, StandInAgent

    pki = LocalPKI(tmp_path)
    with StandInAgent(Cluster.sample(), tls=pki.server) as agent:
        ...  # point a client at agent.address, trusting pki.ca_file

`StandInAgent` serves Nomad's read API from an in-memory `Cluster`, records every request,
and can be told to fail, drop or stall the next requests. It is a test double, not an
agent: it schedules nothing and ignores `filter` expressions.
"""

from __future__ import annotations

import bisect
import collections
import datetime as _dt
import gzip
import http.server
import json
import logging
import os
import re
import shutil
import socket
import socketserver
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import parse_qsl, unquote

from . import pki as _pki

__all__ = ["Cluster", "StandInAgent", "RecordedRequest", "LocalPKI"]

log = logging.getLogger(__name__)

# Timestamps of the sample cluster, in nanoseconds since the epoch as Nomad writes them.
_T0 = 1_700_000_000 * 10**9
_SECOND = 10**9

# Bounds that keep a misbehaving client (or test) from tying the agent up.
MAX_BODY = 1024 * 1024
MAX_CONNECTIONS = 64
MAX_RECORDED = 10_000
MAX_WAIT = 600.0
DEFAULT_WAIT = 300.0
IDLE_TIMEOUT = 30.0
SEARCH_LIMIT = 20

_GO_PLAINTEXT_REPLY = (b"HTTP/1.0 400 Bad Request\r\n\r\n"
                       b"Client sent an HTTP request to an HTTPS server.\n")
_TLS_HANDSHAKE_BYTE = 0x16


# --- the cluster ----------------------------------------------------------------------------

class Cluster:
    """The state a stand-in agent serves: lists of Nomad API objects as plain dicts.

    `jobs`, `nodes`, `allocations`, `evaluations` and `deployments` hold the full objects
    (what the detail endpoints return); the list endpoints derive Nomad's shorter stubs
    and job summaries from them. Change the lists freely, then call `touch()`: it raises
    `index` and wakes blocking queries.
    """

    def __init__(self, *, jobs: Iterable[dict] = (), nodes: Iterable[dict] = (),
                 allocations: Iterable[dict] = (), evaluations: Iterable[dict] = (),
                 deployments: Iterable[dict] = (), region: str = "global",
                 datacenter: str = "dc1", version: str = "1.9.3", index: int = 1) -> None:
        self.jobs = list(jobs)
        self.nodes = list(nodes)
        self.allocations = list(allocations)
        self.evaluations = list(evaluations)
        self.deployments = list(deployments)
        self.region = region
        self.regions = [region]
        self.datacenter = datacenter
        self.version = version
        self.index = index
        self.leader = "127.0.0.1:4647"
        self._changed = threading.Condition()
        self._cache: dict[str, tuple[tuple, Any]] = {}

    def __repr__(self) -> str:
        return (f"Cluster(region={self.region!r}, jobs={len(self.jobs)}, "
                f"nodes={len(self.nodes)}, allocations={len(self.allocations)}, "
                f"index={self.index})")

    def touch(self) -> int:
        """Record a change: raise `index` by one and wake every blocking query."""
        with self._changed:
            self.index += 1
            self._cache.clear()
            self._changed.notify_all()
            return self.index

    def wait_for_change(self, index: int, timeout: float,
                        stopping: threading.Event | None = None) -> None:
        """Block while `self.index <= index`, for at most `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.index <= index and not (stopping and stopping.is_set()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._changed.wait(min(left, 0.5))

    def _wake(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _cached(self, name: str, key: tuple, build: Callable[[], Any]) -> Any:
        """Memoise a derived view for as long as `index` and the list sizes stay put."""
        key = (self.index, len(self.jobs), len(self.allocations), *key)
        hit = self._cache.get(name)
        if hit is not None and hit[0] == key:
            return hit[1]
        value = build()
        self._cache[name] = (key, value)
        return value

    # Lookups ------------------------------------------------------------------------------

    def job(self, job_id: str, namespace: str = "default") -> dict | None:
        for job in self.jobs:
            if job["ID"] == job_id and job.get("Namespace", "default") == namespace:
                return job
        return None

    def job_allocations(self, job_id: str, namespace: str = "default") -> list[dict]:
        index = self._cached("allocs-by-job", (), self._allocations_by_job)
        return index.get((namespace, job_id), [])

    def _allocations_by_job(self) -> dict[tuple[str, str], list[dict]]:
        index: dict[tuple[str, str], list[dict]] = collections.defaultdict(list)
        for alloc in self.allocations:
            index[(alloc.get("Namespace", "default"), alloc["JobID"])].append(alloc)
        return index

    def job_summary(self, job: dict) -> dict:
        """Nomad's JobSummary: allocation counts per task group, and child job counts."""
        namespace = job.get("Namespace", "default")
        summary = {group["Name"]: dict.fromkeys(_SUMMARY_KEYS, 0)
                   for group in job.get("TaskGroups") or []}
        for alloc in self.job_allocations(job["ID"], namespace):
            counts = summary.setdefault(alloc["TaskGroup"], dict.fromkeys(_SUMMARY_KEYS, 0))
            key = _SUMMARY_BY_CLIENT_STATUS.get(alloc["ClientStatus"])
            if key:
                counts[key] += 1
        children = {"Pending": 0, "Running": 0, "Dead": 0}
        if job.get("Periodic") or job.get("ParameterizedJob"):
            for child in self._children().get((namespace, job["ID"]), []):
                children[child["Status"].capitalize()] += 1
        return {
            "JobID": job["ID"], "Namespace": namespace, "Summary": summary,
            "Children": children, "CreateIndex": job.get("CreateIndex", 1),
            "ModifyIndex": job.get("ModifyIndex", 1),
        }

    def _children(self) -> dict[tuple[str, str], list[dict]]:
        def build():
            index = collections.defaultdict(list)
            for job in self.jobs:
                if job.get("ParentID"):
                    index[(job.get("Namespace", "default"), job["ParentID"])].append(job)
            return index
        return self._cached("children", (), build)

    def job_stub(self, job: dict) -> dict:
        """The short form `GET /v1/jobs` lists."""
        stub = {key: job.get(key) for key in _JOB_STUB_KEYS}
        stub["Namespace"] = job.get("Namespace", "default")
        stub["Periodic"] = bool(job.get("Periodic"))
        stub["ParameterizedJob"] = bool(job.get("ParameterizedJob"))
        stub["JobSummary"] = self.job_summary(job)
        return stub

    def allocation_detail(self, alloc: dict) -> dict:
        """An allocation as `GET /v1/allocation/<id>` returns it: with its whole job."""
        detail = dict(alloc)
        detail["Job"] = self.job(alloc["JobID"], alloc.get("Namespace", "default"))
        return detail

    def namespaces(self) -> list[str]:
        names = {"default"}
        names.update(job.get("Namespace", "default") for job in self.jobs)
        return sorted(names)

    # Ready-made clusters -------------------------------------------------------------------

    @classmethod
    def sample(cls) -> "Cluster":
        """A small, consistent cluster: five jobs in namespace "default" (a running
        service, a stopped batch job, a periodic parent with one finished child, and a
        parameterized job), one service in namespace "apps", two nodes, five allocations,
        four evaluations and two deployments.

        Some IDs share a prefix across kinds, for testing ambiguity: the job "cache" and
        allocation "cac0ffee-..." both start with "cac"; two allocations start with
        "5b3e8c1a"; the job "backup" and an evaluation both start with "b".
        """
        return _sample_cluster(cls)

    @classmethod
    def with_jobs(cls, count: int, *, namespace: str = "default") -> "Cluster":
        """A cluster of `count` generated jobs named job-00000, job-00001, ... (services,
        batch jobs and system jobs in turn) on two nodes, with no allocations."""
        cluster = cls(nodes=_sample_nodes(), index=count + 10)
        kinds = ("service", "batch", "system")
        for n in range(count):
            kind = kinds[n % 3]
            status = "dead" if kind == "batch" else "running"
            cluster.jobs.append(_job(
                f"job-{n:05d}", kind, namespace=namespace, status=status,
                submit=_T0 + n * _SECOND, group="main", task="main", index=n + 10,
            ))
        return cluster


_SUMMARY_KEYS = ("Queued", "Complete", "Failed", "Running", "Starting", "Lost", "Unknown")
_SUMMARY_BY_CLIENT_STATUS = {
    "pending": "Starting", "running": "Running", "complete": "Complete",
    "failed": "Failed", "lost": "Lost", "unknown": "Unknown",
}
_JOB_STUB_KEYS = (
    "ID", "ParentID", "Name", "Namespace", "Datacenters", "Multiregion", "NodePool",
    "Type", "Priority", "Stop", "Status", "StatusDescription", "SubmitTime",
    "CreateIndex", "ModifyIndex", "JobModifyIndex", "Meta",
)
_NODE_STUB_KEYS = (
    "Address", "ID", "Attributes", "Datacenter", "Name", "NodeClass", "NodePool",
    "Version", "Drain", "SchedulingEligibility", "Status", "StatusDescription",
    "Drivers", "HostVolumes", "LastDrain", "CreateIndex", "ModifyIndex",
)
_ALLOC_DETAIL_ONLY = ("Job", "Resources", "AllocatedResources", "Metrics")


def _job(job_id: str, kind: str, *, namespace: str = "default", status: str = "running",
         submit: int = _T0, group: str = "main", task: str = "main", count: int = 1,
         driver: str = "docker", index: int = 10, parent: str = "", stop: bool = False,
         periodic: dict | None = None, parameterized: dict | None = None,
         priority: int = 50) -> dict:
    return {
        "Region": "global", "Namespace": namespace, "ID": job_id, "ParentID": parent,
        "Name": job_id, "Type": kind, "Priority": priority, "AllAtOnce": False,
        "Datacenters": ["dc1"], "NodePool": "default", "Multiregion": None,
        "Constraints": None,
        "TaskGroups": [{
            "Name": group, "Count": count,
            "RestartPolicy": {"Attempts": 2, "Interval": 1800 * _SECOND,
                              "Delay": 15 * _SECOND, "Mode": "fail"},
            "Tasks": [{"Name": task, "Driver": driver,
                       "Config": {"image": f"registry.example/{group}:1"},
                       "Resources": {"CPU": 100, "MemoryMB": 128}}],
            "EphemeralDisk": {"Sticky": False, "SizeMB": 300, "Migrate": False},
        }],
        "Update": {"Stagger": 30 * _SECOND, "MaxParallel": 1},
        "Periodic": periodic, "ParameterizedJob": parameterized, "Dispatched": False,
        "Payload": None, "Meta": None, "Stop": stop, "Status": status,
        "StatusDescription": "", "Stable": status == "running", "Version": 0,
        "SubmitTime": submit, "CreateIndex": index, "ModifyIndex": index + 2,
        "JobModifyIndex": index,
    }


def _node(node_id: str, name: str, address: str, *, index: int,
          eligibility: str = "eligible") -> dict:
    return {
        "ID": node_id, "Name": name, "Datacenter": "dc1", "NodeClass": "", "NodePool":
        "default", "Address": address, "HTTPAddr": f"{address}:4646", "TLSEnabled": True,
        "Drain": False, "DrainStrategy": None, "LastDrain": None,
        "SchedulingEligibility": eligibility, "Status": "ready", "StatusDescription": "",
        "StatusUpdatedAt": _T0 // _SECOND, "Version": "1.9.3",
        "Attributes": {"kernel.name": "linux", "cpu.arch": "amd64", "nomad.version": "1.9.3",
                       "unique.hostname": name, "os.name": "debian"},
        "Drivers": {
            driver: {"Attributes": {}, "Detected": True, "Healthy": True,
                     "HealthDescription": "Healthy", "UpdateTime": "2023-11-14T22:13:20Z"}
            for driver in ("docker", "exec")
        },
        "HostVolumes": None, "Meta": {"rack": name[-1]}, "Links": {},
        "NodeResources": {"Cpu": {"CpuShares": 8000}, "Memory": {"MemoryMB": 16000},
                          "Disk": {"DiskMB": 100_000}},
        "Events": [{"Message": "Node registered", "Subsystem": "Cluster", "Details": None,
                    "Timestamp": "2023-11-14T22:13:20Z", "CreateIndex": index}],
        "CreateIndex": index, "ModifyIndex": index + 1,
    }


def _task_state(state: str, started: int, finished: int | None, *, failed: bool = False,
                exit_code: int = 0) -> dict:
    events = [
        {"Type": "Received", "Time": started - 3 * _SECOND,
         "DisplayMessage": "Task received by client"},
        {"Type": "Task Setup", "Time": started - 2 * _SECOND,
         "DisplayMessage": "Building Task Directory"},
        {"Type": "Started", "Time": started, "DisplayMessage": "Task started by client"},
    ]
    if finished is not None:
        events.append({"Type": "Terminated", "Time": finished, "ExitCode": exit_code,
                       "DisplayMessage": f"Exit Code: {exit_code}"})
    for event in events:
        event.setdefault("ExitCode", 0)
        event.update({"Details": {}, "FailsTask": False, "Message": "", "Signal": 0})
    return {
        "State": state, "Failed": failed, "Restarts": 0,
        "StartedAt": _rfc3339(started), "LastRestart": "0001-01-01T00:00:00Z",
        "FinishedAt": _rfc3339(finished) if finished else "0001-01-01T00:00:00Z",
        "Events": events,
    }


def _rfc3339(nanoseconds: int) -> str:
    seconds, fraction = divmod(nanoseconds, _SECOND)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{stamp}.{fraction:09d}Z" if fraction else f"{stamp}Z"


def _allocation(alloc_id: str, job: dict, node: dict, eval_id: str, *, slot: int,
                status: str, desired: str = "run", deployment: str = "",
                started: int, finished: int | None = None, index: int) -> dict:
    group = job["TaskGroups"][0]
    task = group["Tasks"][0]["Name"]
    state = "dead" if finished else ("running" if status == "running" else "pending")
    return {
        "ID": alloc_id, "EvalID": eval_id, "Name": f"{job['ID']}.{group['Name']}[{slot}]",
        "Namespace": job["Namespace"], "NodeID": node["ID"], "NodeName": node["Name"],
        "JobID": job["ID"], "JobType": job["Type"], "JobVersion": job["Version"],
        "TaskGroup": group["Name"], "DesiredStatus": desired, "DesiredDescription": "",
        "DesiredTransition": {"Migrate": None, "Reschedule": None, "ForceReschedule": None},
        "ClientStatus": status,
        "ClientDescription": {"running": "Tasks are running",
                              "complete": "All tasks have completed"}.get(status, ""),
        "TaskStates": {task: _task_state(state, started, finished)},
        "DeploymentID": deployment,
        "DeploymentStatus": ({"Healthy": True, "Canary": False, "ModifyIndex": index + 1,
                              "Timestamp": _rfc3339(started + 10 * _SECOND)}
                             if deployment else None),
        "FollowupEvalID": "", "PreviousAllocation": "", "NextAllocation": "",
        "RescheduleTracker": None, "PreemptedAllocations": None,
        "PreemptedByAllocation": "",
        "Resources": {"CPU": 100, "MemoryMB": 128, "DiskMB": 300},
        "Metrics": {"NodesEvaluated": 2, "NodesFiltered": 0, "NodesExhausted": 0,
                    "NodesAvailable": {"dc1": 2}, "AllocationTime": 31_000},
        "CreateIndex": index, "ModifyIndex": index + 2, "AllocModifyIndex": index,
        "CreateTime": started - 4 * _SECOND, "ModifyTime": finished or started,
    }


def _evaluation(eval_id: str, job: dict, *, triggered_by: str, index: int,
                deployment: str = "", status: str = "complete") -> dict:
    return {
        "ID": eval_id, "Namespace": job["Namespace"], "Priority": job["Priority"],
        "Type": job["Type"], "TriggeredBy": triggered_by, "JobID": job["ID"],
        "JobModifyIndex": job["JobModifyIndex"], "NodeID": "", "NodeModifyIndex": 0,
        "DeploymentID": deployment, "Status": status, "StatusDescription": "",
        "Wait": 0, "WaitUntil": None, "NextEval": "", "PreviousEval": "", "BlockedEval": "",
        "RelatedEvals": None, "FailedTGAllocs": None, "ClassEligibility": None,
        "EscapedComputedClass": False, "AnnotatePlan": False,
        "QueuedAllocations": {group["Name"]: 0 for group in job["TaskGroups"]},
        "SnapshotIndex": index, "CreateIndex": index, "ModifyIndex": index + 1,
        "CreateTime": _T0 + index * _SECOND, "ModifyTime": _T0 + (index + 1) * _SECOND,
    }


def _deployment(deployment_id: str, job: dict, *, status: str, description: str,
                desired: int, healthy: int, index: int) -> dict:
    group = job["TaskGroups"][0]["Name"]
    return {
        "ID": deployment_id, "Namespace": job["Namespace"], "JobID": job["ID"],
        "JobVersion": job["Version"], "JobModifyIndex": job["JobModifyIndex"],
        "JobSpecModifyIndex": job["JobModifyIndex"], "JobCreateIndex": job["CreateIndex"],
        "IsMultiregion": False,
        "TaskGroups": {group: {
            "AutoRevert": False, "AutoPromote": False, "ProgressDeadline": 600 * _SECOND,
            "RequireProgressBy": _rfc3339(_T0 + 600 * _SECOND), "Promoted": False,
            "PlacedCanaries": None, "DesiredCanaries": 0, "DesiredTotal": desired,
            "PlacedAllocs": desired, "HealthyAllocs": healthy,
            "UnhealthyAllocs": 0,
        }},
        "Status": status, "StatusDescription": description,
        "CreateIndex": index, "ModifyIndex": index + 3,
    }


def _sample_nodes() -> list[dict]:
    return [
        _node("f3a9c1d2-6b7e-4c8d-9e0f-1a2b3c4d5e6f", "node-1", "10.0.0.11", index=5),
        _node("7c2e4a6b-8d0f-4b1c-a3e5-f7091b2d4c6e", "node-2", "10.0.0.12", index=6),
    ]


def _sample_cluster(cls: type[Cluster]) -> Cluster:
    node1, node2 = nodes = _sample_nodes()
    cache = _job("cache", "service", group="redis", task="redis", count=2,
                 submit=_T0 + 60 * _SECOND, index=20)
    backup = _job("backup", "batch", group="dump", task="pg_dump", status="dead", stop=True,
                  submit=_T0 + 120 * _SECOND, index=30, priority=40)
    report = _job("report", "batch", group="report", task="render", index=40,
                  submit=_T0 + 180 * _SECOND,
                  periodic={"Enabled": True, "Spec": "0 * * * *", "Specs": ["0 * * * *"],
                            "SpecType": "cron", "ProhibitOverlap": True,
                            "TimeZone": "UTC"})
    report_run = _job("report/periodic-1700000400", "batch", group="report",
                      task="render", status="dead", parent="report", index=45,
                      submit=_T0 + 400 * _SECOND)
    transcode = _job("transcode", "batch", group="ffmpeg", task="ffmpeg", index=50,
                     submit=_T0 + 240 * _SECOND, driver="exec",
                     parameterized={"Payload": "required", "MetaRequired": ["codec"],
                                    "MetaOptional": ["bitrate"]})
    api = _job("api", "service", namespace="apps", group="http", task="server", index=60,
               submit=_T0 + 300 * _SECOND, count=2)

    eval_cache = "e1c4a7b0-3d6f-4a92-b5c8-0e1f2a3b4c5d"
    eval_backup = "b2d5b8c1-4e70-4ba3-86d9-1f2a3b4c5d6e"
    eval_report = "e3e6c9d2-5f81-4cb4-97ea-2a3b4c5d6e7f"
    eval_api = "94f7d0e3-6092-4dc5-a8fb-3b4c5d6e7f80"
    deploy_cache = "d9b1f3a5-7c9e-4b0d-8f2a-4c6e8a0b2d4f"
    deploy_api = "d0c2e4a6-8b0d-4f2e-9a4c-6e8a0c2e4a6b"

    return cls(
        jobs=[cache, backup, report, report_run, transcode, api],
        nodes=nodes,
        allocations=[
            _allocation("cac0ffee-1d2e-4f3a-9b8c-7d6e5f4a3b2c", cache, node1, eval_cache,
                        slot=0, status="running", deployment=deploy_cache,
                        started=_T0 + 70 * _SECOND, index=22),
            _allocation("5b3e8c1a-0f4d-4c2b-8a9e-1c2d3e4f5a6b", cache, node2, eval_cache,
                        slot=1, status="running", deployment=deploy_cache,
                        started=_T0 + 71 * _SECOND, index=23),
            _allocation("5b3e8c1a-7e6d-4b5a-9c8d-2e3f4a5b6c7d", backup, node1, eval_backup,
                        slot=0, status="complete", desired="stop",
                        started=_T0 + 130 * _SECOND, finished=_T0 + 190 * _SECOND,
                        index=32),
            _allocation("4e9f2a7c-1b3d-4e5f-8a6b-9c0d1e2f3a4b", report_run, node2,
                        eval_report, slot=0, status="complete",
                        started=_T0 + 405 * _SECOND, finished=_T0 + 460 * _SECOND,
                        index=47),
            _allocation("a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", api, node2, eval_api,
                        slot=0, status="running", deployment=deploy_api,
                        started=_T0 + 310 * _SECOND, index=62),
        ],
        evaluations=[
            _evaluation(eval_cache, cache, triggered_by="job-register", index=21,
                        deployment=deploy_cache),
            _evaluation(eval_backup, backup, triggered_by="job-deregister", index=31),
            _evaluation(eval_report, report_run, triggered_by="periodic-job", index=46),
            _evaluation(eval_api, api, triggered_by="job-register", index=61,
                        deployment=deploy_api),
        ],
        deployments=[
            _deployment(deploy_cache, cache, status="successful",
                        description="Deployment completed successfully", desired=2,
                        healthy=2, index=21),
            _deployment(deploy_api, api, status="running",
                        description="Deployment is running", desired=2, healthy=1,
                        index=61),
        ],
        index=120,
    )


# --- requests and answers -------------------------------------------------------------------

@dataclass
class RecordedRequest:
    """One request as the stand-in agent received it.

    `path` is the path as sent (still percent-encoded), `query` maps each parameter to
    its last value, `headers` is case-insensitive, `client_cert` is the verified client
    certificate (as `ssl.SSLSocket.getpeercert()` gives it) or None.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: Message
    body: bytes = b""
    client_cert: dict | None = None

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"RecordedRequest({self.method} {self.path} {self.query!r})"


Handler = Callable[[RecordedRequest], tuple]


class _Answer(Exception):
    """Raised inside a route to answer at once with an error status and plain text."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def parse_wait(text: str) -> float:
    """Read a `wait` parameter in seconds: a Go duration ("100ms", "5s", "1m30s") or a
    bare number of milliseconds; capped at Nomad's ten minutes."""
    if re.fullmatch(r"\d+", text):
        return min(int(text) / 1000, MAX_WAIT)
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
             "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise _Answer(400, "Invalid wait time")
    return min(sum(float(n) * units[u] for n, u in parts), MAX_WAIT)


# --- the agent ------------------------------------------------------------------------------

class _Json:
    """A built-in view's answer, always sent as JSON (even a bare string, like
    /v1/status/leader's); `encoded` when it is JSON already."""

    def __init__(self, value: Any = None, *, encoded: bytes | None = None) -> None:
        self.value = value
        self.encoded = encoded

    def render(self, pretty: bool) -> bytes:
        if pretty:
            value = json.loads(self.encoded) if self.encoded is not None else self.value
            return json.dumps(value, indent=4).encode("utf-8")
        return self.encoded if self.encoded is not None else _encode(self.value)


def _encode(value: Any) -> bytes:
    """Compact JSON, as a Nomad agent sends unless asked for `pretty`."""
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def _sort(items: list[dict], namespaced: bool
          ) -> tuple[list[dict], list[tuple[str, str]], list[str]]:
    """Items in (namespace, ID) order, their keys, and the namespaces among them."""
    def key(item: dict) -> tuple[str, str]:
        return (item.get("Namespace", "default") if namespaced else "", item["ID"])

    ordered = sorted(items, key=key)
    keys = [key(item) for item in ordered]
    return ordered, keys, sorted({k[0] for k in keys})


class _Fault:
    def __init__(self, kind: str, **detail: Any) -> None:
        self.kind = kind
        self.detail = detail


class StandInAgent:
    """A small HTTP/1.1 server that answers like a Nomad agent, for tests.

    Use it as a context manager (or call `start()` and `stop()`). `tls` serves HTTPS with
    that credential; `client_ca` also demands a client certificate it signed; `unix_socket`
    listens on that path instead of TCP. With `token`, every request except
    /v1/status/* must carry it as `X-Nomad-Token` or `Authorization: Bearer`. On a TLS
    port, plain HTTP gets the answer a Go agent gives (a 400 that says so) unless
    `go_plaintext_reply` is False, in which case the connection is just closed.
    """

    def __init__(self, cluster: Cluster | None = None, *, tls: _pki.Credential | None = None,
                 client_ca: _pki.Credential | None = None, unix_socket: str | None = None,
                 host: str = "127.0.0.1", token: str | None = None,
                 go_plaintext_reply: bool = True) -> None:
        if client_ca is not None and tls is None:
            raise ValueError("client_ca needs tls: mutual TLS is TLS first")
        self.cluster = cluster if cluster is not None else Cluster.sample()
        self.tls = tls
        self.client_ca = client_ca
        self.unix_socket = unix_socket
        self.host = host
        self.token = token
        self.go_plaintext_reply = go_plaintext_reply
        self._requests: collections.deque[RecordedRequest] = collections.deque(
            maxlen=MAX_RECORDED)
        self._faults: collections.deque[_Fault] = collections.deque()
        self._routes: dict[tuple[str, str], Handler] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: socketserver.BaseServer | None = None
        self._thread: threading.Thread | None = None
        self._context: ssl.SSLContext | None = None

    # Life cycle -------------------------------------------------------------------------

    def start(self) -> "StandInAgent":
        if self._server is not None:
            raise RuntimeError("the stand-in agent is already running")
        self._stopping.clear()
        self._context = self._make_context() if self.tls else None
        if self.unix_socket:
            server: socketserver.BaseServer = _UnixServer(self.unix_socket, _Handler, self)
        else:
            server = _TCPServer((self.host, 0), _Handler, self)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"stand-in agent {self.address}", daemon=True)
        self._thread.start()
        log.debug("stand-in agent listening at %s", self.address)
        return self

    def stop(self) -> None:
        """Stop listening, end open connections and wake blocked requests."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        self.cluster._wake()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        log.debug("stand-in agent stopped")

    def __enter__(self) -> "StandInAgent":
        return self if self._server is not None else self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._server else "stopped"
        return f"StandInAgent({self.address if self._server else '-'}, {state})"

    def _make_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # ssl loads a certificate chain only from files: write them to a private directory
        # just long enough to load them.
        directory = tempfile.mkdtemp(prefix="nomadtls-agent-")
        try:
            cert_file = os.path.join(directory, "cert.pem")
            key_file = os.path.join(directory, "key.pem")
            self.tls.write(cert_file, key_file)
            context.load_cert_chain(cert_file, key_file)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        if self.client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cadata=self.client_ca.cert_pem.decode("ascii"))
        return context

    # What tests look at and steer -------------------------------------------------------

    @property
    def port(self) -> int | None:
        if self._server is None or self.unix_socket:
            return None
        return self._server.server_address[1]

    @property
    def address(self) -> str:
        """The address to give a client: http://, https:// or unix:// (empty when
        stopped)."""
        if self.unix_socket:
            return f"unix://{self.unix_socket}"
        if self._server is None:
            return ""
        scheme = "https" if self.tls else "http"
        host = self.host
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{self.port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far (the latest 10,000), oldest first."""
        with self._lock:
            return list(self._requests)

    def fail_next(self, count: int, status: int = 503, body: str = "No cluster leader"
                  ) -> None:
        """Answer the next `count` requests with `status` and a plain-text `body`."""
        self._queue(count, _Fault("fail", status=status, body=body))

    def drop_next(self, count: int) -> None:
        """Close the connection of the next `count` requests without answering."""
        self._queue(count, _Fault("drop"))

    def stall_next(self, count: int, seconds: float) -> None:
        """Read the next `count` requests, then say nothing for `seconds` before
        answering (a client with a shorter read timeout gives up first)."""
        self._queue(count, _Fault("stall", seconds=seconds))

    def _queue(self, count: int, fault: _Fault) -> None:
        with self._lock:
            self._faults.extend([fault] * count)

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        """Answer `method path` with `handler(request) -> (status, headers, body)`, ahead
        of the built-in routes. A str body is sent as text, bytes as they are, anything
        else as JSON."""
        self._routes[(method.upper(), path)] = handler

    # Serving ----------------------------------------------------------------------------

    def _accept(self, sock: socket.socket) -> socket.socket | None:
        """Ready a new connection: on a TLS port, peek at the first byte and either
        complete the handshake or answer plain HTTP; None means the connection is done."""
        sock.settimeout(IDLE_TIMEOUT)
        if sock.family != socket.AF_UNIX:
            # Go sets this on every connection; without it, headers and body written
            # apart meet delayed ACKs and each answer waits 40 ms.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._context is None:
            return sock
        try:
            first = sock.recv(1, socket.MSG_PEEK)
            if not first:
                return None
            if first[0] != _TLS_HANDSHAKE_BYTE:
                if self.go_plaintext_reply:
                    self._reply_plaintext(sock)
                return None
            return self._context.wrap_socket(sock, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            log.debug("TLS handshake failed: %s", exc)
            return None

    def _reply_plaintext(self, sock: socket.socket) -> None:
        """Answer as Go's server does when plain HTTP reaches a TLS port, reading the
        request first so that closing the socket does not reset the connection."""
        sock.settimeout(1.0)
        seen = b""
        try:
            while b"\r\n\r\n" not in seen and len(seen) < 65536:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                seen += chunk
        except OSError:
            pass
        self._record(_parse_plain_request(seen))
        try:
            sock.sendall(_GO_PLAINTEXT_REPLY)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _record(self, request: RecordedRequest | None) -> None:
        if request is not None:
            with self._lock:
                self._requests.append(request)

    def _next_fault(self) -> _Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def _authorised(self, request: RecordedRequest) -> None:
        if self.token is None or request.path.startswith("/v1/status/"):
            return
        given = request.headers.get("X-Nomad-Token")
        bearer = request.headers.get("Authorization", "")
        if given is None and bearer.lower().startswith("bearer "):
            given = bearer[7:].strip()
        if not given:
            raise _Answer(403, "Permission denied")
        if given != self.token:
            raise _Answer(403, "ACL token not found")

    def _answer(self, request: RecordedRequest) -> tuple[int, dict[str, str], Any]:
        """Route a request to a custom or built-in handler: (status, headers, body)."""
        self._authorised(request)
        decoded = unquote(request.path)
        custom = (self._routes.get((request.method, request.path))
                  or self._routes.get((request.method, decoded)))
        if custom is not None:
            status, headers, body = custom(request)
            return status, dict(headers or {}), body
        for pattern, methods, name, meta in _ROUTES:
            match = pattern.fullmatch(decoded)
            if match is None:
                continue
            if request.method not in methods:
                raise _Answer(405, "Invalid method")
            headers: dict[str, str] = {}
            if meta:
                self._block(request)
                headers = {"X-Nomad-Index": str(self.cluster.index),
                           "X-Nomad-KnownLeader": "true", "X-Nomad-LastContact": "0"}
            view = _Views(self, request, headers)
            body = getattr(view, name)(*match.groups())
            return 200, headers, body if isinstance(body, _Json) else _Json(body)
        raise _Answer(404, "404 page not found\n")

    def _block(self, request: RecordedRequest) -> None:
        """A blocking query: with `index` at or past the cluster's, wait for a change or
        for `wait` (five minutes by default) to pass."""
        raw = request.query.get("index")
        if raw is None:
            return
        try:
            index = int(raw)
        except ValueError:
            raise _Answer(400, "Invalid index") from None
        wait = parse_wait(request.query["wait"]) if "wait" in request.query else DEFAULT_WAIT
        if index >= self.cluster.index:
            self.cluster.wait_for_change(index, wait, self._stopping)


class _Views:
    """The built-in endpoints, one method each, answering from the cluster."""

    def __init__(self, agent: StandInAgent, request: RecordedRequest,
                 headers: dict[str, str]) -> None:
        self.agent = agent
        self.cluster = agent.cluster
        self.request = request
        self.headers = headers
        self.query = request.query
        self.namespace = request.query.get("namespace") or "default"

    def _listing(self, kind: str, items: list[dict], stub: Callable[[dict], dict],
                 namespaced: bool = True) -> _Json:
        """Filter by namespace and `prefix`, sort by (namespace, ID), and cut a page of
        `per_page` starting at `next_token`, setting X-Nomad-NextToken while more are
        left. Tokens are "<namespace>.<ID>" (just the ID for nodes), as Nomad's are.

        The sorted order and each stub's JSON are kept until the cluster changes, so a
        client paging through 20,000 jobs measures itself rather than this double.
        """
        ordered, keys, spaces = self.cluster._cached(
            f"sorted-{kind}", (len(items),), lambda: _sort(items, namespaced))
        prefix = self.query.get("prefix", "")
        if not namespaced:
            spaces = [""]
        elif self.namespace != "*":
            spaces = [self.namespace]
        token = self.query.get("next_token")
        if token and namespaced:
            start = tuple(token.split(".", 1)) if "." in token else (self.namespace, token)
        else:
            start = ("", token or "")
        size = self._page_size()

        chosen: list[int] = []
        for space in spaces:
            low = bisect.bisect_left(keys, max((space, prefix), start))
            high = bisect.bisect_left(keys, (space, prefix + "\U0010ffff"))
            chosen.extend(range(low, high))
            if size and len(chosen) > size:
                break
        if size and len(chosen) > size:
            following = keys[chosen[size]]
            self.headers["X-Nomad-NextToken"] = (
                f"{following[0]}.{following[1]}" if namespaced else following[1])
            chosen = chosen[:size]

        encoded = self.cluster._cached(f"stubs-{kind}", (len(items),), dict)
        parts = []
        for position in chosen:
            item = ordered[position]
            part = encoded.get(id(item))
            if part is None:
                part = encoded[id(item)] = _encode(stub(item))
            parts.append(part)
        return _Json(encoded=b"[" + b",".join(parts) + b"]")

    def _page_size(self) -> int:
        try:
            return max(int(self.query.get("per_page") or 0), 0)
        except ValueError:
            raise _Answer(400, "Invalid per_page value") from None

    def _find(self, items: list[dict], object_id: str, noun: str) -> dict:
        for item in items:
            if item["ID"] == object_id:
                return item
        raise _Answer(404, f"{noun} not found")

    def _job(self, job_id: str) -> dict:
        job = self.cluster.job(job_id, self.namespace)
        if job is None:
            raise _Answer(404, "job not found")
        return job

    def _of_job(self, items: list[dict], job_id: str) -> list[dict]:
        job = self._job(job_id)
        namespace = job.get("Namespace", "default")
        return [item for item in items
                if item["JobID"] == job_id and item.get("Namespace", "default") == namespace]

    # Jobs.
    def jobs(self):
        return self._listing("jobs", self.cluster.jobs, self.cluster.job_stub)

    def job(self, job_id):
        return self._job(job_id)

    def job_summary(self, job_id):
        return self.cluster.job_summary(self._job(job_id))

    def job_allocations(self, job_id):
        job = self._job(job_id)
        allocs = self.cluster.job_allocations(job_id, job.get("Namespace", "default"))
        return [_alloc_stub(alloc) for alloc in allocs]

    def job_evaluations(self, job_id):
        return self._of_job(self.cluster.evaluations, job_id)

    def job_deployments(self, job_id):
        return sorted(self._of_job(self.cluster.deployments, job_id),
                      key=lambda d: d["CreateIndex"], reverse=True)

    def job_deployment(self, job_id):
        deployments = self.job_deployments(job_id)
        return deployments[0] if deployments else None

    # Nodes.
    def nodes(self):
        return self._listing("nodes", self.cluster.nodes, _node_stub, namespaced=False)

    def node(self, node_id):
        return self._find(self.cluster.nodes, node_id, "node")

    def node_allocations(self, node_id):
        self._find(self.cluster.nodes, node_id, "node")
        return [self.cluster.allocation_detail(a) for a in self.cluster.allocations
                if a["NodeID"] == node_id]

    # Allocations, evaluations, deployments.
    def allocations(self):
        return self._listing("allocs", self.cluster.allocations, _alloc_stub)

    def allocation(self, alloc_id):
        return self.cluster.allocation_detail(
            self._find(self.cluster.allocations, alloc_id, "alloc"))

    def evaluations(self):
        return self._listing("evals", self.cluster.evaluations, dict)

    def evaluation(self, eval_id):
        return self._find(self.cluster.evaluations, eval_id, "eval")

    def deployments(self):
        return self._listing("deployments", self.cluster.deployments, dict)

    def deployment(self, deployment_id):
        return self._find(self.cluster.deployments, deployment_id, "deployment")

    def namespaces(self):
        return [{"Name": name, "Description": "", "CreateIndex": 1, "ModifyIndex": 1}
                for name in self.cluster.namespaces()]

    # Search.
    def search(self):
        try:
            wanted = json.loads(self.request.body or b"{}")
            prefix = wanted.get("Prefix", "")
            context = wanted.get("Context", "all") or "all"
        except (ValueError, AttributeError):
            raise _Answer(400, "Request decode failed") from None
        if not isinstance(prefix, str):
            raise _Answer(400, "Request decode failed")
        namespace = wanted.get("Namespace") or self.namespace
        sources = {
            "allocs": (self.cluster.allocations, True),
            "deployment": (self.cluster.deployments, True),
            "evals": (self.cluster.evaluations, True),
            "jobs": (self.cluster.jobs, True),
            "nodes": (self.cluster.nodes, False),
        }
        if context == "all":
            contexts = [*sources, "plugins", "volumes"]
        elif context in sources:
            contexts = [context]
        else:
            raise _Answer(400, f"invalid context {context!r}")
        matches: dict[str, list[str] | None] = {}
        truncations: dict[str, bool] = {}
        for name in contexts:
            items, namespaced = sources.get(name, ([], False))
            ids = sorted(item["ID"] for item in items
                         if item["ID"].startswith(prefix)
                         and (not namespaced or namespace == "*"
                              or item.get("Namespace", "default") == namespace))
            matches[name] = ids[:SEARCH_LIMIT] or None
            truncations[name] = len(ids) > SEARCH_LIMIT
        return {"Matches": matches, "Truncations": truncations}

    # Agent and status: no query metadata.
    def agent_self(self):
        c = self.cluster
        return {
            "config": {
                "Region": c.region, "Datacenter": c.datacenter, "NodeName": "stand-in",
                "Version": {"Version": c.version, "VersionPrerelease": "",
                            "VersionMetadata": "", "Revision": "0" * 40},
                "Ports": {"HTTP": 4646, "RPC": 4647, "Serf": 4648},
                "Server": {"Enabled": True}, "Client": {"Enabled": True},
                "TLSConfig": {"EnableHTTP": self.agent.tls is not None, "EnableRPC": True,
                              "VerifyHTTPSClient": self.agent.client_ca is not None},
                "ACL": {"Enabled": self.agent.token is not None},
            },
            "member": {
                "Name": f"stand-in.{c.region}", "Addr": "127.0.0.1", "Port": 4648,
                "Status": "alive", "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
                "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4,
                "Tags": {"role": "nomad", "region": c.region, "dc": c.datacenter,
                         "build": c.version, "port": "4647", "bootstrap": "1"},
            },
            "stats": {
                "nomad": {"server": "true", "leader": "true", "leader_addr": c.leader,
                          "bootstrap": "true", "known_regions": str(len(c.regions))},
                "raft": {"state": "Leader", "applied_index": str(c.index),
                         "commit_index": str(c.index), "num_peers": "0"},
                "runtime": {"arch": "amd64", "kernel.name": "linux", "version": "go1.22",
                            "cpu_count": "2", "goroutines": "80", "max_procs": "2"},
                "client": {"known_servers": c.leader, "num_allocations": str(
                    sum(a["ClientStatus"] == "running" for a in c.allocations))},
            },
        }

    def agent_health(self):
        return {"server": {"ok": True, "message": "ok"},
                "client": {"ok": True, "message": "ok"}}

    def agent_members(self):
        member = self.agent_self()["member"]
        return {"ServerName": "stand-in", "ServerRegion": self.cluster.region,
                "ServerDC": self.cluster.datacenter, "Members": [member]}

    def status_leader(self):
        return self.cluster.leader

    def status_peers(self):
        return [self.cluster.leader]

    def regions(self):
        return list(self.cluster.regions)


def _alloc_stub(alloc: dict) -> dict:
    return {key: value for key, value in alloc.items() if key not in _ALLOC_DETAIL_ONLY}


def _node_stub(node: dict) -> dict:
    return {key: node.get(key) for key in _NODE_STUB_KEYS}


def _route(path: str, name: str, *, methods: tuple[str, ...] = ("GET",), meta: bool = True):
    return re.compile(path), methods, name, meta


# Patterns match the percent-decoded path; a job ID may hold "/", so the sub-resources of
# a job come before the job itself.
_ROUTES = [
    _route(r"/v1/jobs", "jobs"),
    _route(r"/v1/job/(.+)/summary", "job_summary"),
    _route(r"/v1/job/(.+)/allocations", "job_allocations"),
    _route(r"/v1/job/(.+)/evaluations", "job_evaluations"),
    _route(r"/v1/job/(.+)/deployments", "job_deployments"),
    _route(r"/v1/job/(.+)/deployment", "job_deployment"),
    _route(r"/v1/job/(.+)", "job"),
    _route(r"/v1/nodes", "nodes"),
    _route(r"/v1/node/([^/]+)/allocations", "node_allocations"),
    _route(r"/v1/node/([^/]+)", "node"),
    _route(r"/v1/allocations", "allocations"),
    _route(r"/v1/allocation/([^/]+)", "allocation"),
    _route(r"/v1/evaluations", "evaluations"),
    _route(r"/v1/evaluation/([^/]+)", "evaluation"),
    _route(r"/v1/deployments", "deployments"),
    _route(r"/v1/deployment/([^/]+)", "deployment"),
    _route(r"/v1/namespaces", "namespaces"),
    _route(r"/v1/search", "search", methods=("PUT", "POST")),
    _route(r"/v1/agent/self", "agent_self", meta=False),
    _route(r"/v1/agent/health", "agent_health", meta=False),
    _route(r"/v1/agent/members", "agent_members", meta=False),
    _route(r"/v1/status/leader", "status_leader", meta=False),
    _route(r"/v1/status/peers", "status_peers", meta=False),
    _route(r"/v1/regions", "regions", meta=False),
]


def _parse_plain_request(data: bytes) -> RecordedRequest | None:
    """Best-effort record of a plain HTTP request that reached a TLS port."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return None
    headers = Message()
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    path, _, query = parts[1].partition("?")
    return RecordedRequest(parts[0], path, dict(parse_qsl(query)), headers)


class _Handler(http.server.BaseHTTPRequestHandler):
    """Reads a request, records it, applies any queued fault, and answers."""

    protocol_version = "HTTP/1.1"
    server_version = "nomadtls-stand-in"
    timeout = IDLE_TIMEOUT

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib name)
        log.debug("stand-in agent: " + format, *args)

    def do_GET(self) -> None:
        self._serve()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_GET

    def _serve(self) -> None:
        agent: StandInAgent = self.server.agent
        request = self._read_request()
        if request is None:
            return
        agent._record(request)
        fault = agent._next_fault()
        if fault is not None and fault.kind == "drop":
            self.close_connection = True
            return
        if fault is not None and fault.kind == "stall":
            if agent._stopping.wait(fault.detail["seconds"]):
                self.close_connection = True
                return
        try:
            if fault is not None and fault.kind == "fail":
                raise _Answer(fault.detail["status"], fault.detail["body"])
            status, headers, body = agent._answer(request)
        except _Answer as answer:
            status, headers, body = answer.status, {}, answer.text
        except Exception as exc:  # a bug in a test's route: say so rather than hang up
            log.debug("stand-in agent: route for %s failed", request.path, exc_info=True)
            status, headers, body = 500, {}, f"stand-in agent route failed: {exc!r}"
        self._send(status, headers, body, pretty="pretty" in request.query)

    def _read_request(self) -> RecordedRequest | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._send(411, {}, "Length Required")
            self.close_connection = True
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self._send(413, {}, "Request body too large")
            self.close_connection = True
            return None
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        client_cert = None
        if isinstance(self.connection, ssl.SSLSocket):
            client_cert = self.connection.getpeercert() or None
        return RecordedRequest(self.command, path, dict(parse_qsl(query,
                                                                 keep_blank_values=True)),
                               self.headers, body, client_cert)

    def _send(self, status: int, headers: dict[str, str], body: Any,
              pretty: bool = False) -> None:
        """Answer with `body`: bytes as they are, a str as text, anything else as JSON
        (indented when the request asked for `pretty`)."""
        if isinstance(body, bytes):
            content_type = "application/octet-stream"
        elif isinstance(body, str):
            content_type = "text/plain; charset=utf-8"
        else:
            content_type = "application/json"
            body = (body if isinstance(body, _Json) else _Json(body)).render(pretty)
        data = body.encode("utf-8") if isinstance(body, str) else body
        if len(data) >= 1400 and "gzip" in self.headers.get("Accept-Encoding", ""):
            data = gzip.compress(data, compresslevel=1)
            headers = {**headers, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
        self.send_response(status)
        if not any(k.lower() == "content-type" for k in headers):
            self.send_header("Content-Type", content_type)
        for name, value in headers.items():
            self.send_header(name, str(value))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class _ServerMixin:
    """What the TCP and unix servers share: quiet errors, a cap on connections, TLS set
    up per connection in its own thread, and every connection closed on shutdown."""

    daemon_threads = True
    block_on_close = False

    def _setup_agent(self, agent: StandInAgent) -> None:
        self.agent = agent
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            log.debug("stand-in agent: too many connections, closing one")
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def finish_request(self, request, client_address) -> None:
        with self._open_lock:
            self._open.add(request)
        conn = None
        try:
            conn = self.agent._accept(request)
            if conn is None:
                return
            with self._open_lock:
                self._open.add(conn)
            self.RequestHandlerClass(conn, client_address, self)
        except (OSError, ssl.SSLError) as exc:
            log.debug("stand-in agent: connection ended: %s", exc)
        finally:
            with self._open_lock:
                self._open.discard(request)
                self._open.discard(conn)
            if conn is not None and conn is not request:
                _close_quietly(conn)

    def handle_error(self, request, client_address) -> None:
        log.debug("stand-in agent: error serving a connection", exc_info=True)

    def server_close(self) -> None:
        super().server_close()
        with self._open_lock:
            conns = list(self._open)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _close_quietly(conn: socket.socket) -> None:
    try:
        conn.close()
    except OSError:
        pass


class _TCPServer(_ServerMixin, socketserver.ThreadingMixIn, http.server.HTTPServer):
    allow_reuse_address = True

    def __init__(self, address, handler, agent: StandInAgent) -> None:
        self._setup_agent(agent)
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # skip HTTPServer's reverse DNS lookup
        self.server_name, self.server_port = self.server_address[:2]


class _UnixServer(_ServerMixin, socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    def __init__(self, path: str, handler, agent: StandInAgent) -> None:
        self._setup_agent(agent)
        self._path = path
        super().__init__(path, handler)

    def server_close(self) -> None:
        super().server_close()
        try:
            os.unlink(self._path)
        except FileNotFoundError:
            pass


# --- a throw-away PKI ------------------------------------------------------------------------

class LocalPKI:
    """A complete test PKI, created and written to `directory` on construction.

    `ca` signed `server` (server.global.nomad, localhost, 127.0.0.1, ::1), `client`,
    `cli` and `expired_server` (valid for one day, thirty days ago); `other_ca` signed only
    `other_server`, so it is the wrong CA for everything else. Each is a
    `nomadtls.pki.Credential`; the `*_file` attributes are the PEM files' paths.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        long_ago = _dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(days=30)
        self.ca = _pki.create_ca()
        self.other_ca = _pki.create_ca(common_name="Some Other CA")
        self.server = _pki.create_certificate(self.ca, "server", ip_addresses=["::1"])
        self.client = _pki.create_certificate(self.ca, "client")
        self.cli = _pki.create_certificate(self.ca, "cli")
        self.expired_server = _pki.create_certificate(self.ca, "server", ip_addresses=["::1"],
                                                      not_before=long_ago, days=1)
        self.other_server = _pki.create_certificate(self.other_ca, "server",
                                                    ip_addresses=["::1"])

        self.ca_file, self.ca_key_file = self._write(self.ca, _pki.ca_filenames())
        self.other_ca_file, self.other_ca_key_file = self._write(
            self.other_ca, ("other-ca.pem", "other-ca-key.pem"))
        for role in _pki.ROLES:
            cert_file, key_file = self._write(getattr(self, role),
                                              _pki.cert_filenames(role))
            setattr(self, f"{role}_cert_file", cert_file)
            setattr(self, f"{role}_key_file", key_file)
        self.expired_server_cert_file, self.expired_server_key_file = self._write(
            self.expired_server,
            ("expired-server.pem", "expired-server-key.pem"))
        self.other_server_cert_file, self.other_server_key_file = self._write(
            self.other_server, ("other-server.pem", "other-server-key.pem"))

    def _write(self, cred: _pki.Credential, names: tuple[str, str]
               ) -> tuple[Path, Path]:
        cert_file, key_file = (self.directory / n for n in names)
        cred.write(cert_file, key_file, overwrite=True)
        return cert_file, key_file

    def __repr__(self) -> str:
        return f"LocalPKI({str(self.directory)!r})"


"""Serve a stand-in Nomad agent over TLS for the benchmark, in a process of its own so that
the clients measured against it are measured alone.

It mints a cluster CA and a server certificate into `--directory`, starts the agent with a
sample cluster (or one of `--jobs` jobs), prints one JSON line (address, host, port,
ca_file, server_name, jobs) and serves until its standard input closes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nomadtls.testing import Cluster, LocalPKI, StandInAgent

HOST = "localhost"  # a name the server certificate holds, resolved to 127.0.0.1 here
SERVER_NAME = "server.global.nomad"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=0,
                        help="how many jobs the cluster holds; 0 for the sample cluster")
    parser.add_argument("--directory", type=Path, required=True,
                        help="where the CA and the server certificate are written")
    args = parser.parse_args()

    args.directory.mkdir(parents=True, exist_ok=True)
    pki = LocalPKI(args.directory)
    cluster = Cluster.with_jobs(args.jobs) if args.jobs else Cluster.sample()
    with StandInAgent(cluster, tls=pki.server) as agent:
        port = agent.port
        print(json.dumps({
            "address": f"https://{HOST}:{port}",
            "host": HOST,
            "port": port,
            "ca_file": str(pki.ca_file),
            "server_name": SERVER_NAME,
            # what GET /v1/jobs lists: the jobs in namespace "default"
            "jobs": sum(1 for job in cluster.jobs
                        if job.get("Namespace", "default") == "default"),
        }), flush=True)
        sys.stdin.read()  # serve until the benchmark closes our stdin
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One client making many keep-alive GETs to the benchmark's agent: prints, as a JSON line,
the CPU time per request spent in the timed loop after a warm-up, and how many TLS
connections the client opened (one, when keep-alive works).

Every client fetches GET /v1/jobs, accepting a gzip answer as requests does, and decodes
the JSON body, verifying the agent's certificate against the cluster CA by a name the
certificate holds.
"""

from __future__ import annotations

import argparse
import json
import resource
import ssl
import sys

import urllib3.connection

PATH = "/v1/jobs"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def count_connections() -> list[int]:
    """Count TLS connections opened from now on, whichever library opens them: every
    client here ends in urllib3's HTTPSConnection."""
    opened = [0]
    connect = urllib3.connection.HTTPSConnection.connect

    def counting_connect(self):
        opened[0] += 1
        return connect(self)

    urllib3.connection.HTTPSConnection.connect = counting_connect
    return opened


def nomadtls_client(args):
    from nomadtls import NomadClient

    client = NomadClient(address=f"https://{args.host}:{args.port}", ca_cert=args.ca_file,
                         tls_server_name=args.server_name)
    return lambda: client.get(PATH)  # get returns the decoded JSON


def python_nomad_client(args):
    import nomad

    jobs = nomad.Nomad(host=args.host, port=args.port, secure=True, verify=args.ca_file).jobs
    return jobs.get_jobs


def requests_client(args):
    import requests

    session = requests.Session()
    session.verify = args.ca_file
    url = f"https://{args.host}:{args.port}{PATH}"
    return lambda: session.get(url).json()


def urllib3_client(args):
    context = ssl.create_default_context(cafile=args.ca_file)
    pool = urllib3.PoolManager(ssl_context=context)
    url = f"https://{args.host}:{args.port}{PATH}"
    # The same request on the wire as requests sends: the agent compresses its answer.
    headers = {"Accept-Encoding": "gzip, deflate"}

    def fetch():
        answer = pool.request("GET", url, headers=headers)
        if answer.status != 200:
            raise RuntimeError(f"GET {url}: {answer.status}")
        return json.loads(answer.data)
    return fetch


CLIENTS = {
    "nomadtls": nomadtls_client,
    "python-nomad": python_nomad_client,
    "requests": requests_client,
    "urllib3": urllib3_client,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("client", choices=sorted(CLIENTS))
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca-file", required=True)
    parser.add_argument("--server-name", required=True)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warm-up", type=int, default=50)
    args = parser.parse_args()

    opened = count_connections()
    fetch = CLIENTS[args.client](args)
    for _ in range(args.warm_up):
        jobs = fetch()
    start = cpu_seconds()
    for _ in range(args.requests):
        jobs = fetch()
    spent = cpu_seconds() - start
    print(json.dumps({"client": args.client, "cpu_per_request": spent / args.requests,
                      "connections": opened[0], "jobs": len(jobs)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

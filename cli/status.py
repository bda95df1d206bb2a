"""`nomadtls status [prefix]`: the job list, or the detail view of whatever a prefix names.

A prefix costs one `/v1/search` over every context, resolved as Nomad resolves it; then the
view's own reads. This module is imported for every help page, so the client and the
renderer load only inside the command.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any, Callable, Mapping, Optional, Sequence
from urllib.parse import quote

import typer

from nomadtls.errors import NomadError

from .options import Connection, connection_options, make_client, option_names

if TYPE_CHECKING:  # pragma: no cover
    from nomadtls.client import NomadClient

__all__ = ["status", "pick", "NoMatch", "Ambiguous", "VIEWABLE"]

# The search contexts this command can show, in the order an ambiguity lists them.
VIEWABLE = ("jobs", "nodes", "allocs", "evals", "deployment")


class NoMatch(Exception):
    """The search found nothing for the prefix."""


class Ambiguous(Exception):
    """The prefix matches more than one object; `matches` is the search's non-empty
    contexts, in the order to list them."""

    def __init__(self, prefix: str, matches: Mapping[str, Sequence[str]]) -> None:
        super().__init__(prefix)
        self.prefix = prefix
        self.matches = matches

    def lines(self) -> list[str]:
        """The report as Nomad prints it: a heading, then per context a blank line, its
        title-cased name with a colon, and the IDs joined by ", "."""
        out = [f'Multiple matches found for id "{self.prefix}"']
        for context, ids in self.matches.items():
            out += ["", f"{context[:1].upper()}{context[1:]}:", ", ".join(ids)]
        return out


def pick(prefix: str, matches: Mapping[str, Sequence[str] | None]) -> tuple[str, str]:
    """Which object a prefix names, from the `Matches` of a search: (context, ID).

    A context whose first match is the prefix itself wins when it is the only such
    context; failing that, a lone context with exactly one match. Raises `NoMatch` when
    every context is empty (an agent sends null for an empty one) and `Ambiguous`
    otherwise.
    """
    found = {context: list(ids) for context, ids in matches.items() if ids}
    exact = [context for context, ids in found.items() if ids[0] == prefix]
    if len(exact) == 1:
        return exact[0], prefix
    if not found:
        raise NoMatch(prefix)
    if len(found) == 1:
        (context, ids), = found.items()
        if len(ids) == 1:
            return context, ids[0]
    ordered = sorted(found, key=lambda c: VIEWABLE.index(c) if c in VIEWABLE else len(VIEWABLE))
    raise Ambiguous(prefix, {context: found[context] for context in ordered})


def _path(*parts: str) -> str:
    return "/v1/" + "/".join(quote(part, safe="") for part in parts)


def _job_namespace(client: NomadClient, job_id: str) -> dict[str, str] | None:
    """With -namespace '*', the namespace holding the job: a job is read in its own."""
    if client.settings.namespace != "*":
        return None
    stubs = client.get("/v1/jobs", params={"prefix": job_id})
    namespaces = sorted(stub.get("Namespace") or "default" for stub in stubs
                        if stub.get("ID") == job_id)
    if len(namespaces) > 1:
        raise Ambiguous(job_id, {"namespaces": namespaces})
    return {"namespace": namespaces[0]} if namespaces else None


def _fetch_job(client: NomadClient, job_id: str) -> dict[str, Any]:
    params = _job_namespace(client, job_id)
    job = client.get(_path("job", job_id), params)
    parent = bool(job.get("Periodic") or job.get("ParameterizedJob"))
    return {
        "Job": job,
        "Summary": client.get(_path("job", job_id, "summary"), params),
        "LatestDeployment": (None if parent else
                             client.get(_path("job", job_id, "deployment"), params)),
        "Allocations": client.get(_path("job", job_id, "allocations"), params),
    }


def _fetch_node(client: NomadClient, node_id: str) -> dict[str, Any]:
    return {"Node": client.get(_path("node", node_id)),
            "Allocations": client.get(_path("node", node_id, "allocations"))}


def _fetch_alloc(client: NomadClient, alloc_id: str) -> Any:
    return client.get(_path("allocation", alloc_id))


def _fetch_eval(client: NomadClient, eval_id: str) -> Any:
    return client.get(_path("evaluation", eval_id), params={"related": "true"})


def _fetch_deployment(client: NomadClient, deployment_id: str) -> Any:
    return client.get(_path("deployment", deployment_id))


# context -> (read what the view needs, name of the render function)
_VIEWS: dict[str, tuple[Callable[[NomadClient, str], Any], str]] = {
    "jobs": (_fetch_job, "job_detail"),
    "nodes": (_fetch_node, "node_detail"),
    "allocs": (_fetch_alloc, "alloc_detail"),
    "evals": (_fetch_eval, "eval_detail"),
    "deployment": (_fetch_deployment, "deployment_detail"),
}


def _lookup(client: NomadClient, prefix: str) -> tuple[Any, str]:
    """One search for `prefix`, then the reads of the view it resolves to: (the JSON the
    view is built from, the name of its render function). An object of a kind the command
    does not show is a NomadError, reported as any other."""
    answer = client.put("/v1/search", json={"Prefix": prefix, "Context": "all"})
    context, object_id = pick(prefix, (answer or {}).get("Matches") or {})
    if context not in _VIEWS:
        raise NomadError(f'"{prefix}" names an object of the kind "{context}", which status '
                         "does not show",
                         hint="it shows jobs, nodes, allocations, evaluations and deployments.")
    fetch, name = _VIEWS[context]
    return fetch(client, object_id), name


def _fail(lines: Sequence[str]) -> typer.Exit:
    for line in lines:
        print(line, file=sys.stderr)
    return typer.Exit(1)


@connection_options
def status(
    prefix: Annotated[Optional[str], typer.Argument(
        metavar="[PREFIX]", show_default=False,
        help="Start of a job, node, allocation, evaluation or deployment ID.")] = None,
    verbose: Annotated[bool, typer.Option(
        *option_names("-verbose"), help="Show full IDs, not their first 8 characters.")
    ] = False,
    as_json: Annotated[bool, typer.Option(
        *option_names("-json"), help="Print the JSON the view is built from, indented 4.")
    ] = False,
    *,
    connection: Connection,
) -> None:
    """Show the jobs, or the job, node, allocation, evaluation or deployment whose ID
    starts with PREFIX.

    With no PREFIX, lists the jobs of the namespace (of every namespace with -namespace
    '*'). With one, searches every kind of ID at once; a prefix that names more than one
    object lists the candidates and exits 1.
    """
    from . import render

    with make_client(connection) as client:
        settings = client.settings
        if not prefix:
            data = client.get("/v1/jobs")
            view, options = render.job_list, {"all_namespaces": settings.namespace == "*"}
        else:
            try:
                data, name = _lookup(client, prefix)
            except NoMatch:
                raise _fail([f'No matches returned for query "{prefix}"']) from None
            except Ambiguous as ambiguity:
                raise _fail(ambiguity.lines()) from None
            paint = render.Paint(render.use_color(settings.no_color, settings.force_color))
            view, options = getattr(render, name), {"verbose": verbose, "paint": paint}
    if as_json:
        text = render.json_text(data)  # json.dumps(data, indent=4), written faster
    else:
        text = view(data, **options)
    sys.stdout.write(text + "\n")

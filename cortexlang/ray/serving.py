"""Online serving with Ray Serve: concurrent requests merged into one compiled run.

    POST /  {"tree": "(3 (2 good) (2 film))"}              a PTB line
    POST /  {"tree": {"label": 3, "children": [...]}}       a JSON record (see inputs.jsontrees)
    200     {"outputs": {"h": [...]}}                       root outputs: a vector; [all]: rows
    400     {"error": {"code": "E0502", "message": "error[E0502]: ... --> request:1:9 ..."}}

`TreeModelServer` is a deployment whose replicas each build a `LoadedModel` in their
constructor (compile, bind weights). Its `__call__` reads one request and awaits
`run_batch`, which `@serve.batch` calls with up to `max_batch_size` trees that arrived within
`batch_wait_timeout_s` of each other: they are parsed one by one (a bad tree gets its own
located error) and the rest run as one batch (`LoadedModel.run_rows`, which keeps a tree the
model rejects apart), so a bad request never fails the others it was batched with.

Each replica asks for `cpus_per_replica` CPUs, and its PoCL device is limited to as many
threads, as the actors of the batch job are.
"""

from __future__ import annotations

import json
from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

from cortexlang.ray.corpus import Row
from cortexlang.ray.job import pocl_thread_limit
from cortexlang.ray.model import LoadedModel, ModelSpec, StructureResult

REQUEST_PATH = "request"
DEFAULT_MAX_BATCH_SIZE = 32
DEFAULT_BATCH_WAIT_S = 0.005


def request_row(body: Any) -> Row:
    """The row of a request body; a body without a tree is an E0511 error row (its text
    fails to parse with a located error, as a bad JSON line would)."""
    tree = body.get("tree") if isinstance(body, dict) else None
    if isinstance(tree, str):
        return Row(REQUEST_PATH, 1, tree, "ptb")
    if isinstance(tree, dict):
        return Row(REQUEST_PATH, 1, json.dumps({"tree": tree}), "json")
    return Row(REQUEST_PATH, 1, json.dumps(body), "json")


def response(result: StructureResult) -> tuple[dict[str, Any], int]:
    """The JSON body and HTTP status of one result."""
    if result.arrays is None:
        return {"error": {"code": result.code, "message": result.error}}, 400
    outputs = {key.removeprefix("outputs/"): value.tolist()
               for key, value in result.arrays.items() if key.startswith("outputs/")}
    return {"outputs": outputs, "nodes": result.nodes}, 200


@serve.deployment
class TreeModelServer:
    """One replica: the model compiled once; requests batched into compiled runs."""

    def __init__(self, spec: ModelSpec, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
                 batch_wait_timeout_s: float = DEFAULT_BATCH_WAIT_S) -> None:
        self.model = LoadedModel(spec)
        batcher: Any = self.run_batch  # the setters of @serve.batch are not in its type
        batcher.set_max_batch_size(max_batch_size)
        batcher.set_batch_wait_timeout_s(batch_wait_timeout_s)
        self.batches: list[int] = []

    async def __call__(self, request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        content, status = await self.run_batch(request_row(body))
        return JSONResponse(content, status_code=status)

    async def handle(self, body: Any) -> tuple[dict[str, Any], int]:
        """The same as a request, for a `DeploymentHandle` caller: (body, status)."""
        result: tuple[dict[str, Any], int] = await self.run_batch(request_row(body))
        return result

    @serve.batch(max_batch_size=DEFAULT_MAX_BATCH_SIZE, batch_wait_timeout_s=DEFAULT_BATCH_WAIT_S)
    async def run_batch(self, rows: list[Row]) -> list[tuple[dict[str, Any], int]]:
        self.batches.append(len(rows))
        return [response(result) for result in self.model.run_rows(rows)]

    def batch_sizes(self) -> list[int]:
        """The size of every batch run so far (for tests and benchmarks)."""
        return list(self.batches)


def server_app(spec: ModelSpec, *, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
               batch_wait_timeout_s: float = DEFAULT_BATCH_WAIT_S, replicas: int = 1,
               cpus_per_replica: int = 1) -> Any:
    """The Serve application of `spec` (bind it with `serve.run`)."""
    server: Any = TreeModelServer  # a Deployment, though typed as the class it decorates
    deployment = server.options(
        num_replicas=replicas,
        ray_actor_options={"num_cpus": cpus_per_replica,
                           "runtime_env": {"env_vars": pocl_thread_limit(cpus_per_replica)}},
        max_ongoing_requests=max(100, 2 * max_batch_size))
    return deployment.bind(spec, max_batch_size, batch_wait_timeout_s)


def start_server(spec: ModelSpec, *, host: str = "127.0.0.1", port: int = 8000,
                 name: str = "cortexlang", **options: Any) -> Any:
    """Start Serve's HTTP proxy on host:port and deploy `spec`; the deployment handle.

    The cluster must be connected (`cortexlang.ray.job.connect`)."""
    serve.start(http_options={"host": host, "port": port})
    return serve.run(server_app(spec, **options), name=name, route_prefix="/")

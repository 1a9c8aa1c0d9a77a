"""The Serve deployment: concurrent requests merged into one compiled run, each answer the
single-process run's, a bad tree answered with its located error without failing the rest."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cortexlang.backends import BackendOptions, get_backend
from cortexlang.frontend.check import load_program
from cortexlang.inputs.jsontrees import to_json_record
from cortexlang.inputs.load import load_structures
from cortexlang.inputs.weights import init_weights

pytest.importorskip("ray.serve", reason="the ray extra is not installed: "
                                        "pip install 'cortexlang[ray]'")

TREELSTM = str(Path(__file__).resolve().parents[2] / "examples" / "treelstm.cx")
# One worker runs every Ray test (pytest-xdist), so the suite starts one local cluster.
pytestmark = [pytest.mark.opencl, pytest.mark.usefixtures("ray_cluster"),
              pytest.mark.xdist_group("ray")]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def post(port: int, body: object) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/",
                                     data=json.dumps(body).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_concurrent_requests_share_a_run_and_a_bad_tree_fails_alone(corpus: Path) -> None:
    from ray import serve

    from cortexlang.ray.model import ModelSpec
    from cortexlang.ray.serving import start_server

    loaded = load_structures(corpus / "a.ptb")
    program = load_program(TREELSTM, {"H": 8, "V": 60})
    weights = init_weights(program.params, 0)
    spec = ModelSpec(source=program.source, path=program.path, weights=weights,
                     vocab=loaded.vocab.tokens, sizes=(("H", 8), ("V", 60)))
    expected = get_backend("compiled")(program, loaded.structures[:8], weights,
                                       BackendOptions()).outputs["h"]
    lines = [line for line in (corpus / "a.ptb").read_text().split("\n") if line][:8]
    port = free_port()
    handle = start_server(spec, port=port, name="test", max_batch_size=16,
                          batch_wait_timeout_s=0.2)
    try:
        bodies: list[object] = [{"tree": line} for line in lines]
        bodies.insert(3, {"tree": "(2 (1 x) (3 y) (2 z))"})
        bodies.insert(6, {"forest": "?"})
        # The first tree again, as a nested JSON tree: the same answer as its PTB line.
        bodies.append({"tree": to_json_record(loaded.structures[0], loaded.vocab,
                                                  nested=True)["tree"]})

        # Every request is sent before any answer is awaited, so they can share batches.
        pending = [handle.handle.remote(body) for body in bodies]
        answers = [response.result(timeout_s=120) for response in pending]
        statuses = [status for _, status in answers]
        assert statuses == [200, 200, 200, 400, 200, 200, 400, 200, 200, 200, 200]
        assert answers[3][0]["error"]["code"] == "E0507"
        assert "request:1:1" in answers[3][0]["error"]["message"]
        assert answers[6][0]["error"]["code"] == "E0511"
        good = [body for body, status in answers if status == 200]
        np.testing.assert_allclose(np.array([body["outputs"]["h"] for body in good]),
                                   np.concatenate([expected, expected[:1]]), rtol=1e-5,
                                   atol=1e-6)
        sizes = handle.batch_sizes.remote().result()
        assert sum(sizes) == len(bodies) and max(sizes) > 1
        status, body = post(port, {"tree": lines[0]})
        assert status == 200
        np.testing.assert_allclose(body["outputs"]["h"], expected[0], rtol=1e-5, atol=1e-6)
        status, body = post(port, {"tree": "(2 (1 x)"})
        assert (status, body["error"]["code"]) == (400, "E0501")
    finally:
        serve.shutdown()

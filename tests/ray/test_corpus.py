"""The parts of cortexlang.ray that run without Ray: rows, chunks, vocabulary, the model's
batch runs with bad structures kept apart, and shards (written, finished, read back)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cortexlang.backends import BackendOptions, get_backend
from cortexlang.errors import InputError
from cortexlang.frontend.check import load_program
from cortexlang.inputs.load import load_structures
from cortexlang.inputs.weights import init_weights
from cortexlang.ray import corpus as rows
from cortexlang.ray.model import LoadedModel, ModelSpec, StructureResult, split_outputs
from cortexlang.ray.shards import (
    Manifest,
    finish_directory,
    read_manifest,
    read_outputs,
    shard_name,
    write_shard,
)

TREELSTM = str(Path(__file__).resolve().parents[2] / "examples" / "treelstm.cx")


def interp_spec(vocab: tuple[str, ...]) -> ModelSpec:
    program = load_program(TREELSTM, {"H": 8, "V": 60})
    return ModelSpec(source=program.source, path=program.path,
                     weights=init_weights(program.params, 0, dtype=np.float64), vocab=vocab,
                     sizes=(("H", 8), ("V", 60)), backend="interp",
                     options=BackendOptions(dtype="float64"))


def all_rows(paths: list[str], lines_per_chunk: int) -> list[rows.Row]:
    chunks = rows.chunk_files(paths, lines_per_chunk=lines_per_chunk)
    return [row for chunk in chunks for row in rows.read_chunk(chunk)]


def test_chunks_cover_every_line_once_whatever_their_size(corpus: Path) -> None:
    paths = rows.expand_patterns([str(corpus / "*.ptb")])
    assert paths == [str(corpus / "a.ptb"), str(corpus / "b.ptb")]
    whole = all_rows(paths, 10_000)
    assert len(whole) == 70
    assert whole[45].id == f"{corpus / 'b.ptb'}:7"  # after the blank line 6
    for size in (1, 3, 7, 64):
        chunks = rows.chunk_files(paths, lines_per_chunk=size)
        assert sum(chunk.rows for chunk in chunks) == 70
        assert [(row.id, row.text) for row in all_rows(paths, size)] == [
            (row.id, row.text) for row in whole]


def test_a_pattern_that_matches_nothing_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        rows.expand_patterns([str(tmp_path / "*.ptb")])
    assert caught.value.codes == ["E0509"]


def test_the_corpus_vocabulary_is_the_single_file_one(corpus: Path, tmp_path: Path) -> None:
    paths = rows.expand_patterns([str(corpus / "*.ptb")])
    joined = tmp_path / "all.ptb"
    joined.write_text("".join(Path(path).read_text() for path in paths))
    chunks = rows.chunk_files(paths, lines_per_chunk=4)
    vocab = rows.merge_tokens([rows.first_tokens(chunk) for chunk in chunks])
    assert vocab.tokens == load_structures(joined).vocab.tokens


def test_row_errors_are_located_at_their_file_and_line(tmp_path: Path) -> None:
    ptb = rows.Row("c.ptb", 12, "(2 (1 a) (3 b)))", "ptb")
    with pytest.raises(InputError) as caught:
        rows.parse_row(ptb, lambda token: 1)
    diagnostic = caught.value.diagnostics[0]
    assert (diagnostic.code, diagnostic.span.path, diagnostic.span.line) == ("E0502", "c.ptb", 12)
    assert "12 | (2 (1 a) (3 b)))" in caught.value.render()
    bad_json = rows.Row("c.jsonl", 9, '{"tree": {"label": 2, "word": 3}}', "json")
    with pytest.raises(InputError) as caught:
        rows.parse_row(bad_json, lambda token: 1)
    assert caught.value.diagnostics[0].span.line == 9
    assert caught.value.codes == ["E0511"]
    two = rows.Row("c.jsonl", 4, '{"tree": {"word": "a"}} {"tree": {"word": "b"}}', "json")
    with pytest.raises(InputError) as caught:
        rows.parse_row(two, lambda token: 1)
    assert caught.value.codes == ["E0511"]
    assert caught.value.diagnostics[0].span.line == 4


def test_a_bad_structure_fails_alone_and_the_batch_still_runs(corpus: Path) -> None:
    paths = rows.expand_patterns([str(corpus / "a.ptb")])
    good = all_rows(paths, 100)[:6]
    vocab = rows.merge_tokens([[token for row in good for token in row.text.split()
                                if "(" not in token and ")" not in token]])
    model = LoadedModel(interp_spec(vocab.tokens))
    # A flat record whose leaves have no token: the model rejects it when it runs (E0554).
    no_token = rows.Row("x.jsonl", 3, json.dumps(
        {"nodes": 3, "kind": "tree", "children": [[-1, -1], [-1, -1], [0, 1]]}), "json")
    unclosed = rows.Row("x.ptb", 5, "(2 (1 a) (3 b)", "ptb")
    batch = [good[0], no_token, good[1], unclosed, *good[2:]]
    results = model.run_rows(batch)
    assert [result.id for result in results] == [row.id for row in batch]
    assert [result.code for result in results] == ["", "E0554", "", "E0501"] + [""] * 4
    assert "x.ptb:5:1" in results[3].error
    alone = model.run_rows(good)
    ok = [result for result in results if result.ok]
    for together, single in zip(ok, alone, strict=True):
        for key, value in single.arrays.items():
            np.testing.assert_array_equal(together.arrays[key], value)


def fake_results(count: int, start: int = 0) -> list[StructureResult]:
    """Results of `count` structures of 1..3 nodes with recognisable values."""
    results = []
    for index in range(start, start + count):
        nodes = 1 + index % 3
        arrays = {"outputs/h": np.full(2, index, dtype=np.float32),
                  "states/h": np.full((nodes, 2), index, dtype=np.float32)}
        results.append(StructureResult(rows.structure_id("f.ptb", index + 1), arrays, nodes))
    return results


def test_shards_read_back_in_file_and_line_order(tmp_path: Path) -> None:
    results = fake_results(7)
    later = write_shard(str(tmp_path), results[4:], {"h": "root"})
    earlier = write_shard(str(tmp_path), results[:4], {"h": "root"})
    assert later == shard_name([result.id for result in results[4:]])
    manifest = Manifest(("f.ptb",), {earlier: tuple(r.id for r in results[:4]),
                                     later: tuple(r.id for r in results[4:])}, ())
    assert finish_directory(str(tmp_path), manifest) == []
    assert read_manifest(str(tmp_path)).structures == 7
    merged = read_outputs(str(tmp_path))
    np.testing.assert_array_equal(merged["outputs/h"][:, 0], np.arange(7))
    np.testing.assert_array_equal(merged["node_offset"],
                                  np.concatenate([[0], np.cumsum([1, 2, 3, 1, 2, 3, 1])]))
    np.testing.assert_array_equal(merged["states/h"][:, 0], np.repeat(np.arange(7),
                                                                       [1, 2, 3, 1, 2, 3, 1]))


def test_finishing_removes_leftover_shards_and_refuses_duplicates(tmp_path: Path) -> None:
    results = fake_results(4)
    kept = write_shard(str(tmp_path), results, {"h": "root"})
    leftover = write_shard(str(tmp_path), results[:2], {"h": "root"})
    manifest = Manifest(("f.ptb",), {kept: tuple(result.id for result in results)}, ())
    assert finish_directory(str(tmp_path), manifest) == [leftover]
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([kept, "manifest.json"])
    twice = Manifest(("f.ptb",), {kept: (results[0].id,), leftover: (results[0].id,)}, ())
    write_shard(str(tmp_path), results[:2], {"h": "root"})
    with pytest.raises(InputError) as caught:
        finish_directory(str(tmp_path), twice)
    assert caught.value.codes == ["E0623"]


def test_split_outputs_are_the_structures_rows(corpus: Path) -> None:
    program = load_program(TREELSTM, {"H": 8, "V": 60})
    loaded = load_structures(corpus / "a.ptb")
    weights = init_weights(program.params, 0, dtype=np.float64)
    outputs = get_backend("interp")(program, loaded.structures[:3], weights,
                                    BackendOptions(dtype="float64"))
    second = split_outputs(outputs, 1)
    np.testing.assert_array_equal(second["outputs/h"], outputs.outputs["h"][1])
    nodes = loaded.structures[1].num_nodes
    assert second["states/c"].shape == (nodes, 8)


def test_serve_and_run_ray_refuse_what_they_cannot_do(capsys: pytest.CaptureFixture[str],
                                                        tmp_path: Path) -> None:
    from cortexlang.cli import main

    assert main(["serve", TREELSTM]) == 2  # the model reads tokens: a vocabulary is needed
    assert "E0011" in capsys.readouterr().err
    assert main(["run", TREELSTM, "--synthetic", "3", "--ray"]) == 2
    assert "--ray needs --trees FILES and --out DIR" in capsys.readouterr().err
    missing = str(tmp_path / "none" / "*.ptb")
    assert main(["run", TREELSTM, "--trees", missing, "--ray", "--out", str(tmp_path)]) == 1
    assert "E0509" in capsys.readouterr().err


def test_a_unary_node_in_a_binary_tree_is_refused_as_the_single_process_run_does() -> None:
    model = LoadedModel(interp_spec(("<unk>", "a", "b")))
    [unary, fine] = model.run_rows([rows.Row("u.ptb", 2, "(2 (1 (3 a)) (3 b))", "ptb"),
                                    rows.Row("u.ptb", 3, "(2 (1 a) (3 b))", "ptb")])
    assert (unary.code, fine.code) == ("E0582", "")
    assert "u.ptb:2" in unary.error

"""Result records and result files (conformance/harness/results.py): one writer, one reader that
refuses what it cannot read, and the rows the engine measures."""

from __future__ import annotations

import json

import pytest

from adapters.base import Output
from adapters.reference_adapter import ReferenceAdapter
from conformance.harness.engine import run_property
from conformance.harness.results import (FORMAT, ROW_KEYS, ResultFile, ResultFileError, Stats, read_result_file,
                                         write_result_file)


def _file(**rows):
    return ResultFile("demo", "demoflow", "1.0", {"name": "demo"}, "ci", "3.11", "Linux", "now",
                      properties={name: Stats(examples=3).row(name, status) for name, status in rows.items()})


def test_round_trip(tmp_path):
    path = write_result_file(tmp_path / "demo.json", _file(forward_parity="pass", peepholes="unsupported"))
    doc = json.loads(path.read_text())
    assert doc["format"] == FORMAT and [r["property"] for r in doc["properties"]] == ["forward_parity", "peepholes"]
    back = read_result_file(path)
    assert back.properties["forward_parity"]["status"] == "pass" and back.counts()["unsupported"] == 1
    assert set(ROW_KEYS) <= set(back.properties["peepholes"])


@pytest.mark.parametrize("mutate, text", [
    (lambda d: d.pop("format"), "result file format None"),
    (lambda d: d.update(format=1), "result file format 1"),
    (lambda d: d.pop("backend"), "missing ['backend']"),
    (lambda d: d["properties"][0].pop("examples"), "properties[0]: missing ['examples']"),
    (lambda d: d["properties"][0].update(status="passed"), "status 'passed'"),
    (lambda d: d.update(fixtures={}), "'fixtures': expected a list"),
])
def test_the_reader_refuses_what_it_cannot_read(tmp_path, mutate, text):
    path = write_result_file(tmp_path / "demo.json", _file(forward_parity="pass"))
    doc = json.loads(path.read_text())
    mutate(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(ResultFileError, match=str(path).replace(".", r"\.")) as exc:
        read_result_file(path)
    assert text in str(exc.value)


def test_an_infinite_ratio_is_written_as_strict_json(tmp_path):
    stats = Stats(examples=1, ratio=float("inf"))
    path = write_result_file(tmp_path / "x.json", ResultFile("x", "f", "1", {}, "ci", "3", "L", "t",
                                                             properties={"p": stats.row("p", "fail")}))
    assert json.loads(path.read_text())["properties"][0]["tolerance_ratio"] == "inf"


class Produces(ReferenceAdapter):
    """The reference, saying what it ran (as a pipeline backend says what its converter produced)."""

    name = "produces"

    def run(self, case):
        out = super().run(case)
        return Output(out.y, out.final, produced="fused LSTM" if case.steps % 2 else "unrolled")


def test_what_the_backend_ran_is_counted_per_property():
    stats = run_property("forward_parity", Produces(), max_examples=10)
    row = stats.row("forward_parity", "pass")
    assert sum(row["produced"].values()) == 10 and set(row["produced"]) <= {"fused LSTM", "unrolled"}

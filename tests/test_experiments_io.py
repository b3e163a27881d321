"""rnnbook.experiments._io: the command line and the result files every
experiment script shares."""

import json
import math
import os
import pathlib

import pytest
import torch

from rnnbook.experiments import _io


def _parse(argv, **kwargs):
    parser = _io.experiment_parser("A test experiment.\n\nMore.", **kwargs)
    return _io.parse_experiment_args(
        parser, argv, lambda a: "x_tiny.json" if a.tiny else "x.json"
    )


def test_shared_options_are_parsed_and_checked(tmp_path):
    out = tmp_path / "sub" / "r.json"
    args = _parse(
        ["--tiny", "--workers", "3", "--device", "cpu", "--out", str(out)],
        workers=2,
        device=True,
    )
    assert args.tiny and args.workers == 3
    assert args.device == torch.device("cpu") and args.out == out
    assert out.parent.is_dir() and not list(out.parent.iterdir())  # probe gone


def test_the_default_output_is_named_by_the_arguments(monkeypatch, tmp_path):
    monkeypatch.setattr(_io, "data_dir", lambda: tmp_path)
    assert _parse([]).out == tmp_path / "x.json"
    assert _parse(["--tiny"]).out == tmp_path / "x_tiny.json"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--workers", "0"], "--workers >= 1"),
        (["--device", "nonsense"], "cannot use --device"),
        (["--out", "{tmp}"], "file path, got the folder"),
        (["--out", "{tmp}/r.txt"], "end in .json"),
    ],
)
def test_bad_options_stop_before_any_work(argv, message, tmp_path, capsys):
    argv = [a.format(tmp=tmp_path) for a in argv]
    with pytest.raises(SystemExit) as stop:
        _parse(argv, workers=1, device=True)
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_options_a_script_does_not_take_are_refused(capsys):
    with pytest.raises(SystemExit):
        _parse(["--workers", "2"])  # no workers=... given
    assert "unrecognized arguments" in capsys.readouterr().err


def test_write_json_atomic_replaces_whole_files_readably(tmp_path):
    path = tmp_path / "r.json"
    _io.write_json_atomic(path, {"a": 1})
    _io.write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "r.json"
    _io.write_json_atomic(path, {"a": 1})
    with pytest.raises(TypeError):
        _io.write_json_atomic(path, {"a": object()})  # not JSON
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_load_result_reads_shipped_files_and_names_the_others():
    result = _io.load_result("pascanu_temporal_order.json")
    assert len(result["runs"]) == 60
    with pytest.raises(FileNotFoundError, match="available"):
        _io.load_result("no_such_result.json")
    with pytest.raises(ValueError, match="result file name"):
        _io.load_result("../etc/passwd")
    assert isinstance(_io.data_dir(), pathlib.Path)


def test_map_runs_one_worker_in_order_and_restores_threads():
    threads = torch.get_num_threads()
    seen = []

    def spy(n):
        seen.append(torch.get_num_threads())
        return math.factorial(n)

    assert list(_io.map_runs(spy, [3, 0, 5])) == [6, 1, 120]
    assert seen == [1, 1, 1]  # each job on one thread
    assert torch.get_num_threads() == threads  # the caller's setting back


def test_map_runs_pool_returns_every_result():
    jobs = [4, 1, 6, 2]
    got = sorted(_io.map_runs(math.factorial, jobs, workers=2))
    assert got == sorted(math.factorial(n) for n in jobs)


@pytest.mark.parametrize(
    "workers, error", [(0, ValueError), (-1, ValueError), ("2", TypeError)]
)
def test_map_runs_rejects_bad_workers_at_the_call(workers, error):
    with pytest.raises(error, match="workers"):
        _io.map_runs(math.factorial, [1], workers)


def test_run_all_returns_every_result_and_labels_the_bar(capsys):
    labels = []

    def label(result):
        labels.append(result)
        return f"last {result}"

    got = _io.run_all(math.factorial, (n for n in [3, 0, 5]), desc="t")
    assert got == [6, 1, 120]  # one worker: in order; a generator is fine
    got = _io.run_all(math.factorial, [4, 2], workers=2, desc="t", label=label)
    assert sorted(got) == [2, 24] and sorted(labels) == [2, 24]
    assert "last" in capsys.readouterr().err  # tqdm writes to stderr
    assert _io.run_all(math.factorial, [], desc="t", progress=False) == []
    with pytest.raises(ValueError, match="workers"):
        _io.run_all(math.factorial, [1], 0, desc="t")

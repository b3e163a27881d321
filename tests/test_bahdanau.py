"""rnnbook.experiments.bahdanau: the --tiny run, the probes, the seeds."""

import dataclasses
import datetime
import json

import numpy as np
import pytest
import torch

from rnnbook.experiments import bahdanau
from rnnbook.seq2seq import seq2seq_model
from rnnbook.tasks import REVERSAL_VOCAB, reversal_translation


def test_tiny_run_writes_a_complete_result(tmp_path):
    out = tmp_path / "tiny.json"
    assert bahdanau.main(["--tiny", "--no-progress", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    config = bahdanau.TINY
    assert result["config"]["l_train"] == config.l_train
    assert len(result["runs"]) == 2 * config.repeats
    for run in result["runs"]:
        assert run["lengths"] == list(range(1, 2 * config.l_train + 1))
        assert len(run["exact"]) == len(run["token"]) == len(run["lengths"])
        assert all(0 <= a <= 1 for a in run["exact"] + run["token"])
    # paired: both models of a repeat share their seeds
    by_repeat = {}
    for run in result["runs"]:
        by_repeat.setdefault(run["repeat"], []).append(run["seeds"])
    for seeds in by_repeat.values():
        assert seeds[0] == seeds[1]
    assert by_repeat[0] != by_repeat[1]
    examples = result["dates"]["examples"]
    assert len(examples) == config.date_examples
    for ex in examples:
        w = np.array(ex["weights"])
        assert w.shape[1] == len(ex["source"]) + 1  # characters and EOS
        assert np.allclose(w.sum(1), 1, atol=1e-3)
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left
    assert result["babel"] and result["cldr"]  # the date data's versions
    assert result["dates"]["held_out"] is True


def test_bad_arguments_fail_before_the_work(tmp_path, capsys):
    with pytest.raises(SystemExit):
        bahdanau.main(["--tiny", "--out", str(tmp_path)])  # a folder
    with pytest.raises(SystemExit):
        bahdanau.main(["--tiny", "--device", "nonsense"])
    with pytest.raises(SystemExit):
        bahdanau.main(["--tiny", "--threads", "0"])


def test_seed_streams_are_distinct():
    seeds = [bahdanau.run_seeds(r) for r in range(3)]
    seeds.append(bahdanau.run_seeds(0, "dates"))
    seeds.append(bahdanau.run_seeds(0, "pilot"))
    values = [v for s in seeds for v in s.values()]
    assert len(set(values)) == len(values)
    assert bahdanau.run_seeds(1) == bahdanau.run_seeds(1)


def test_source_gradient_norms_match_a_loop():
    torch.manual_seed(0)
    net = seq2seq_model(len(REVERSAL_VOCAB), 6, 5, True).double()
    b = reversal_translation(3, 6, 6, torch.Generator().manual_seed(0))
    norms = bahdanau.source_gradient_norms(net, b)
    expected = np.zeros(b.src.shape[1])
    for i in range(3):  # sentence by sentence, through a leaf embedding
        x = net.encoder.embed(b.src[i : i + 1]).detach().requires_grad_(True)
        net.encoder.embed.register_forward_hook(lambda m, a, o: x)
        logits = net(
            b.src[i : i + 1], b.src_mask[i : i + 1], b.tgt_in[i : i + 1]
        )
        net.encoder.embed._forward_hooks.clear()
        nll = torch.nn.functional.cross_entropy(
            logits[0], b.tgt_out[i], reduction="sum"
        )
        (g,) = torch.autograd.grad(nll, x)
        expected += g[0].norm(dim=1).numpy() / 3
    np.testing.assert_allclose(norms, expected, rtol=1e-8)
    with pytest.raises(ValueError, match="equal-length"):
        bahdanau.source_gradient_norms(
            net,
            reversal_translation(3, 1, 6, torch.Generator().manual_seed(1)),
        )


def test_mirror_alignment_counts_anti_diagonal_peaks():
    class Mirror:
        def alignments(self, src, src_mask, tgt_in):
            B, S = src.shape
            w = torch.zeros(B, tgt_in.shape[1], S)
            for b in range(B):
                L = int(src_mask[b].sum()) - 1
                for t in range(L):
                    w[b, t, L - 1 - t] = 1.0
                w[b, L:, L] = 1.0
            return w

    b = reversal_translation(5, 1, 7, torch.Generator().manual_seed(0))
    assert bahdanau.mirror_alignment(Mirror(), b) == 1.0


def test_match_rates():
    torch.manual_seed(0)
    net = seq2seq_model(len(REVERSAL_VOCAB), 6, 5, False)
    b = reversal_translation(8, 2, 5, torch.Generator().manual_seed(0))
    exact, token = bahdanau.match_rates(net, b, 10)
    assert 0 <= exact <= token <= 1


def _lcs_brute(a, b):
    """The longest common subsequence by trying every subsequence of a."""
    import itertools

    def is_subsequence(sub, seq):
        it = iter(seq)
        return all(x in it for x in sub)

    for r in range(len(a), -1, -1):
        if any(is_subsequence(c, b) for c in itertools.combinations(a, r)):
            return r
    return 0


def test_lcs_length_against_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(200):
        a = rng.integers(0, 3, rng.integers(0, 7)).tolist()
        b = rng.integers(0, 3, rng.integers(0, 7)).tolist()
        assert bahdanau.lcs_length(a, b) == _lcs_brute(a, b)
    assert bahdanau.lcs_length("ABCBDAB", "BDCABA") == 4  # CLRS's example


def test_aligned_symbol_accuracy_forgives_a_shift():
    target = list("ABCDE") + ["<eos>"]
    dropped = list("ACDE") + ["<eos>"]  # B dropped: every later slot shifts
    positional = sum(x == y for x, y in zip(dropped, target)) / len(target)
    assert positional == 1 / 6
    assert bahdanau.aligned_symbol_accuracy([dropped], [target]) == 5 / 6
    # no insertion or deletion: the same as position by position
    swapped = list("ABXDE") + ["<eos>"]
    assert bahdanau.aligned_symbol_accuracy([swapped], [target]) == 5 / 6
    inserted = list("ABCXDE") + ["<eos>"]  # one symbol too many costs one
    assert bahdanau.aligned_symbol_accuracy([inserted], [target]) == 6 / 7
    assert (
        bahdanau.aligned_symbol_accuracy([target, dropped], [target] * 2)
        == 11 / 12
    )
    with pytest.raises(ValueError, match="as many outputs"):
        bahdanau.aligned_symbol_accuracy([target], [])
    with pytest.raises(ValueError, match="at least one symbol"):
        bahdanau.aligned_symbol_accuracy([[]], [[]])


def _tiny_date_test(config):
    """The test examples of run_dates, re-drawn from their seed."""
    seeds = bahdanau.run_seeds(0, "dates")
    _, test_days = bahdanau.date_days(config)
    return bahdanau.date_examples(
        config.date_test,
        torch.Generator().manual_seed(seeds["test"]),
        test_days,
    )


def test_held_out_test_dates_never_occur_in_training():
    config = dataclasses.replace(bahdanau.TINY, date_steps=50, date_test=200)
    train_days, test_days = bahdanau.date_days(config)
    assert not set(train_days) & set(test_days)
    assert len(test_days) == round(0.1 * (len(train_days) + len(test_days)))
    seen = bahdanau.date_training_examples(config)
    assert len(seen) > 0.9 * 50 * config.batch_size  # mostly distinct
    test = _tiny_date_test(config)
    # no test date occurs in training in any writing, nor any test source
    assert not {iso for _, iso, _, _ in test} & {iso for _, iso in seen}
    assert not {t for t, _, _, _ in test} & {t for t, _ in seen}
    assert {datetime.date.fromisoformat(e[1]) for e in test} <= set(test_days)
    # without the option both sides draw from every day
    both = dataclasses.replace(config, date_held_out=False)
    assert bahdanau.date_days(both) == (None, None)


def test_date_training_examples_are_the_training_draws():
    config = bahdanau.TINY
    data = torch.Generator().manual_seed(
        bahdanau.run_seeds(0, "dates")["data"]
    )
    train_days, _ = bahdanau.date_days(config)
    expected = {
        (t, iso)
        for _ in range(config.date_steps)
        for t, iso, _, _ in bahdanau.date_examples(
            config.batch_size, data, train_days
        )
    }
    assert bahdanau.date_training_examples(config) == expected


def test_the_pilot_picks_by_validation_and_the_runs_use_its_choice(tmp_path):
    out = tmp_path / "tiny.json"
    assert bahdanau.main(["--tiny", "--no-progress", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    pilot, config = result["pilot"], bahdanau.TINY
    assert pilot["rates"] == list(config.pilot_rates)
    assert pilot["steps"] == config.pilot_steps
    assert pilot["n_validation"] == config.n_validation
    assert len(pilot["runs"]) == len(bahdanau.MODELS) * len(config.pilot_rates)
    for name in bahdanau.MODELS:
        runs = [r for r in pilot["runs"] if r["model"] == name]
        assert [r["lr"] for r in runs] == list(config.pilot_rates)
        best = min(runs, key=lambda r: (-r["val_exact"], r["val_loss"]))
        assert pilot["chosen"][name] == best["lr"]
        for run in result["runs"]:
            if run["model"] == name:
                assert run["lr"] == best["lr"]
    # the pilot's seeds are its own: none is a test or training seed
    others = {v for r in result["runs"] for v in r["seeds"].values()}
    others |= set(result["dates"]["seeds"].values())
    assert not set(pilot["seeds"].values()) & others
    assert set(pilot["seeds"]) == {"init", "data", "validation"}
    # both models' sizes, recorded once and per run
    for run in result["runs"]:
        assert run["parameters"] == result["parameters"][run["model"]]
    assert result["parameters"] == bahdanau.parameter_counts(config)
    # the dates were held out: the stored examples are test dates
    assert result["dates"]["test_days"] > 0
    test = _tiny_date_test(config)
    assert [e["source"] for e in result["dates"]["examples"]] == [
        t for t, _, _, _ in test[: config.date_examples]
    ]


def test_validation_scores_agree_with_the_loss_and_decoder():
    torch.manual_seed(0)
    net = seq2seq_model(len(REVERSAL_VOCAB), 6, 5, True)
    b = reversal_translation(8, 2, 5, torch.Generator().manual_seed(0))
    exact, loss = bahdanau.validation_scores(net, b, 10)
    assert exact == bahdanau.match_rates(net, b, 10)[0]
    logits = net(b.src, b.src_mask, b.tgt_in)
    nll = torch.nn.functional.cross_entropy(
        logits[b.tgt_mask], b.tgt_out[b.tgt_mask]
    )
    assert loss == pytest.approx(nll.item(), rel=1e-6)


def test_run_seeds_rejects_an_unknown_part():
    with pytest.raises(ValueError, match="pilot"):
        bahdanau.run_seeds(0, "nonsense")


def test_parameter_matched_sizes():
    """69 units is the plain size nearest RNNsearch's parameter count."""
    config = bahdanau.Config()
    search = bahdanau.parameter_counts(config)["RNNsearch"]
    gaps = {
        h: bahdanau.parameter_counts(
            dataclasses.replace(config, plain_hidden=h)
        )["RNNencdec"]
        - search
        for h in (64, 68, 69, 70)
    }
    assert min(gaps, key=lambda h: abs(gaps[h])) == 69
    assert gaps[68] < 0 < gaps[69]  # no size matches exactly
    assert abs(gaps[69]) / search < 0.01


def test_plain_hidden_sizes_only_the_plain_model(tmp_path):
    out = tmp_path / "matched.json"
    argv = ["--tiny", "--no-progress", "--plain-hidden", "10"]
    assert bahdanau.main([*argv, "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    sizes = {r["model"]: r["hidden_size"] for r in result["runs"]}
    assert sizes == {"RNNencdec": 10, "RNNsearch": bahdanau.TINY.hidden_size}
    assert result["config"]["plain_hidden"] == 10
    assert result["command"].endswith("--tiny --plain-hidden 10")
    with pytest.raises(SystemExit):
        bahdanau.main(["--tiny", "--plain-hidden", "0", "--out", str(out)])

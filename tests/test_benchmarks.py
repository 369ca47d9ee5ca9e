"""The benchmarks' runner and shared parts; the quality-per-second benchmark's measuring parts."""

import argparse
import importlib
import inspect
import json
import math
import os
import re
import sys
import time

import keras
import numpy as np
import pytest
from PIL import Image

import benchmarks
from benchmarks import common, keras_io_reference, report, trainers
from benchmarks import quality_per_second as bench
from keras_vae import VAE


def test_forward_flops_counts_dense_conv_and_transposed_conv():
    images = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same")(images)  # 4x4x4 out
    x = keras.layers.Conv2DTranspose(2, 3, strides=2, padding="same")(x)  # 4x4 in
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(5)(x)  # 8*8*2 = 128 in
    model = keras.Model(images, outputs)
    expected = 2 * (4 * 4 * 3 * 3 * 3 * 4) + 2 * (4 * 4 * 3 * 3 * 4 * 2) + 2 * (128 * 5)
    assert bench.forward_flops(model) == expected


def test_forward_flops_of_the_keras_example_networks_by_hand():
    vae = VAE(preset="keras_example")
    encoder = 2 * (14 * 14 * 9 * 32 + 7 * 7 * 9 * 32 * 64 + 3136 * 16 + 2 * 16 * 2)
    decoder = 2 * (2 * 3136 + 7 * 7 * 9 * 64 * 64 + 14 * 14 * 9 * 64 * 32 + 28 * 28 * 9 * 32)
    assert bench.forward_flops(vae.encoder) == encoder
    assert bench.forward_flops(vae.decoder) == decoder


def test_reference_has_the_keras_example_presets_networks():
    reference = keras_io_reference.build()
    vae = VAE(preset="keras_example")
    assert reference.encoder.count_params() == vae.encoder.count_params() == 69_076
    assert reference.decoder.count_params() == vae.decoder.count_params() == 65_089


def test_reference_loss_terms_match_a_numpy_elbo():
    reference = keras_io_reference.build()
    images = np.random.default_rng(0).uniform(size=(3, 28, 28, 1)).astype("float32")
    keras.utils.set_random_seed(1)
    reconstruction, kl = (t.numpy() for t in reference.loss_terms(images))
    keras.utils.set_random_seed(1)
    z_mean, z_log_var, z = (t.numpy() for t in reference.encoder(images))
    p = np.clip(reference.decoder(z).numpy(), 1e-7, 1 - 1e-7)
    expected = -(images * np.log(p) + (1 - images) * np.log(1 - p)).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(reconstruction, expected, rtol=1e-4)
    expected_kl = 0.5 * (np.exp(z_log_var) + z_mean**2 - 1 - z_log_var).sum(axis=1)
    np.testing.assert_allclose(kl, expected_kl, rtol=1e-4, atol=1e-5)


def test_budget_stops_training_and_excludes_evaluation_time():
    model = VAE(preset="mlp", latent_dim=2, encoder_units=(8,), decoder_units=(8,), seed=0)
    model.compile(optimizer="adam")
    images = np.random.default_rng(0).uniform(size=(64, 28, 28, 1)).astype("float32")
    calls = []

    def evaluate():
        calls.append(time.perf_counter())
        time.sleep(0.5)
        return {"neg_elbo": float(len(calls))}

    budget = bench.Budget((0.3, 0.6), evaluate, steps_per_epoch=4)
    start = time.perf_counter()
    history = model.fit(images, epochs=10**6, batch_size=16, callbacks=[budget], verbose=0)
    wall = time.perf_counter() - start
    assert len(calls) == 2
    assert [p["checkpoint"] for p in budget.curve] == [0.3, 0.6]
    assert [p["neg_elbo"] for p in budget.curve] == [1.0, 2.0]
    # Two 0.5 s evaluations happened inside fit; the training clock counted
    # neither the first (before the second checkpoint) nor the second.
    assert wall >= 1.0
    assert 0.6 <= budget.curve[-1]["seconds"] <= calls[1] - start - 0.45
    assert len(history.history["loss"]) < 10**6


def test_budget_evaluates_after_the_epoch_checkpoints():
    model = VAE(preset="mlp", latent_dim=2, encoder_units=(8,), decoder_units=(8,), seed=0)
    model.compile(optimizer="adam")
    images = np.random.default_rng(0).uniform(size=(64, 28, 28, 1)).astype("float32")
    budget = bench.Budget(
        (600,), lambda: {"neg_elbo": 1.0}, steps_per_epoch=4, epoch_checkpoints=(2,)
    )
    model.fit(images, epochs=3, batch_size=16, callbacks=[budget], verbose=0)
    assert len(budget.epoch_seconds) == 3
    assert [p["epochs"] for p in budget.after_epochs] == [2]
    assert budget.after_epochs[0]["seconds"] == pytest.approx(
        sum(budget.epoch_seconds[:2]), abs=0.05
    )
    assert budget.curve == []


def test_epoch_figures_use_epochs_two_onwards():
    figures = trainers.epoch_figures([10.0, 2.0, 2.0, 3.0], images_per_epoch=100)
    assert figures["epochs"] == 4
    assert figures["images_per_second"] == pytest.approx(50.0)
    assert figures["slowest_over_median"] == pytest.approx(1.5)
    assert figures["first_epoch_seconds"] == 10.0


def test_pixel_entropy_floor():
    half = np.full((2, 4, 4, 1), 0.5, np.float32)
    assert bench.pixel_entropy_floor(half) == pytest.approx(16 * math.log(2))
    binary = np.zeros((2, 4, 4, 1), np.float32)
    binary[0, :2] = 1.0
    assert bench.pixel_entropy_floor(binary) == 0.0


def test_plot_curves_writes_a_png(tmp_path):
    results = [
        {
            "model": "a",
            "curve": [{"seconds": 1.0, "neg_elbo": 300.0}, {"seconds": 10.0, "neg_elbo": 250.0}],
        },
        {"model": "b", "curve": [{"seconds": 2.0, "neg_elbo": 280.0}]},
    ]
    path = tmp_path / "curves.png"
    bench.plot_curves(results, str(path), floor=190.0)
    with Image.open(path) as image:
        assert image.size[0] > 300 and image.size[1] > 200
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]


def quality_result(name, speed, at_60, after_5=None):
    """A model's result as `quality` records it, at one 60 s checkpoint."""
    return {
        "model": name,
        "curve": [{"checkpoint": 60, "seconds": 60.0, "neg_elbo": at_60, "iw_nll": 245.0}],
        "after_epochs": [{"epochs": 5, "neg_elbo": after_5}] if after_5 else [],
        "epochs": 3,
        "images_per_second": speed,
        "slowest_over_median": 1.05,
        "flops_per_image": 2e6,
        "decode_ms_batch_1": 0.5,
        "decode_ms_batch_64": 4.0,
    }


def test_markdown_table_and_same_run_comparisons():
    result = quality_result
    results = [
        result("mlp", 3000.0, 251.0, after_5=260.5),
        result(bench.TORCH_REFERENCE, 2000.0, 252.0, after_5=260.0),
        result("keras_example", 900.0, 330.0),
        result(bench.REFERENCE, 1000.0, 320.0),
        result("default", 1500.0, 250.0),
    ]
    table = bench.markdown(results, (10, 60), floor=190.0)
    assert "| `mlp` | 251.00 | 245.00 | 55.00 | 260.50 | 3 | 3,000 | 1.05 | 2.00 | 18.0 |" in table
    assert "| `keras_example` | 330.00 | 245.00 | 55.00 |  | 3 | 900 |" in table
    compared = bench.comparisons(results, (10, 60))
    assert compared["mlp_over_pytorch_reference_images_per_second"] == pytest.approx(1.5)
    assert compared["keras_example_over_keras_io_reference_images_per_second"] == pytest.approx(0.9)
    assert compared["mlp_minus_pytorch_reference_neg_elbo_after_5_epochs"] == pytest.approx(0.5)
    # The best peer at 60 s is the PyTorch reference (252 < 320); 10 s is not a reported
    # budget (60, 300 and 900 s are), so it has no comparison.
    assert compared["default_minus_best_peer_neg_elbo_at_60_s"] == {
        "peer": bench.TORCH_REFERENCE,
        "nats": pytest.approx(-2.0),
    }
    assert [k for k in compared if k.startswith("default_")] == [
        "default_minus_best_peer_neg_elbo_at_60_s"
    ]
    # Without the PyTorch peer the best peer is the Keras example's own training.
    without = bench.comparisons([r for r in results if r["model"] != bench.TORCH_REFERENCE], (60,))
    assert without["default_minus_best_peer_neg_elbo_at_60_s"]["peer"] == bench.REFERENCE
    assert "mlp_over_pytorch_reference_images_per_second" not in without


def test_command_line_spells_out_every_argument_and_machine_facts_name_the_versions():
    args = argparse.Namespace(
        latent_dim=8, out="a b.json", docs="", quick=True, gpu=False, ks=[5, 20], names=["a b"]
    )
    assert common.command_line("x", args) == (
        "python -m benchmarks x --latent-dim 8 --out 'a b.json' --docs '' --quick --ks 5 20 "
        "--names 'a b'"
    )
    facts = common.machine_facts()
    expected = {"cpu", "cpu_family", "cpu_flags", "cores", "python", "tensorflow", "keras"}
    assert set(facts) == expected and set(facts["cpu_flags"]) <= set(common.SPEED_FLAGS)
    assert facts["keras"] == keras.__version__ and facts["cores"] >= 1


def test_the_runner_lists_every_benchmark_and_refuses_an_unknown_name(capsys):
    from benchmarks.__main__ import main

    assert main([]) == 0
    listed = capsys.readouterr().out
    for benchmark in benchmarks.BENCHMARKS:
        assert f"  {benchmark.name} " in listed
    assert main(["no-such-benchmark"]) == 2
    assert "no benchmark 'no-such-benchmark'" in capsys.readouterr().err


def test_the_runner_calls_the_module_with_its_fixed_options_and_its_name(monkeypatch):
    from benchmarks.__main__ import main

    calls = []
    monkeypatch.setattr(bench, "main", lambda argv, prog: calls.append((argv, prog)))
    main(["quick", "--seed", "3"])
    main(["quality"])
    assert calls == [(["--quick", "--seed", "3"], "quick"), ([], "quality")]


def test_every_benchmark_module_takes_argv_and_its_runner_name():
    for benchmark in benchmarks.BENCHMARKS:
        module = importlib.import_module(f"benchmarks.{benchmark.module}")
        parameters = inspect.signature(module.main).parameters
        assert list(parameters)[:2] == ["argv", "prog"], benchmark.module


def test_the_makefile_names_only_benchmarks_the_runner_knows():
    with open(os.path.join(common.ROOT, "Makefile")) as f:
        makefile = f.read()
    named = set(re.findall(r"^BENCH_(?:NEEDS|OPTIONS)_([\w-]+) :=", makefile, re.MULTILINE))
    assert named and named <= set(benchmarks.BY_NAME)
    assert "$(PY) -m benchmarks $(NAME)" in makefile


@pytest.mark.parametrize("document", report.DOCUMENTS)
def test_the_committed_document_is_what_report_generates_from_the_committed_results(document):
    with open(os.path.join(common.ROOT, document)) as f:
        text = f.read()
    assert report.table_ids(text), f"{document} has no generated table"
    assert report.render(text) == text, f"run `python -m benchmarks report` ({document})"


def test_report_puts_back_a_figure_edited_by_hand_and_refuses_an_unknown_table():
    with open(os.path.join(common.ROOT, "BENCHMARKS.md")) as f:
        text = f.read()
    edited = text.replace("| `mlp` | float32 | 26,044 |", "| `mlp` | float32 | 30,000 |")
    assert edited != text
    assert report.render(edited) == text
    unknown = "<!-- table nothing: x -->\n| a |\n<!-- end table nothing -->\n"
    with pytest.raises(KeyError, match="no generated table 'nothing'"):
        report.render(unknown)


def test_every_result_file_and_every_table_is_shown_once(monkeypatch):
    loaded = set()
    real_load = report.load

    def recording_load(name):
        loaded.add(name)
        return real_load(name)

    monkeypatch.setattr(report, "load", recording_load)
    ids = []
    for document in report.DOCUMENTS:
        with open(os.path.join(common.ROOT, document)) as f:
            text = f.read()
        ids += report.table_ids(text)
        report.render(text)
    assert sorted(ids) == sorted(report.TABLES)
    results = os.path.join(common.ROOT, common.RESULTS)
    assert loaded == {name for name in os.listdir(results) if name.endswith(".json")}
    listed = {path for b in benchmarks.BENCHMARKS for path in b.writes if path.endswith(".json")}
    assert listed == loaded


def test_quality_runs_each_model_in_a_child_and_reports_the_same_run_comparisons(
    tmp_path, monkeypatch
):
    """`python -m benchmarks quick`, every model's training replaced by a recorded result."""
    from benchmarks.__main__ import main

    images = np.zeros((4, 28, 28, 1), np.float32)
    fakes = {
        "mlp": quality_result("mlp", 3000.0, 251.0, after_5=260.5),
        bench.TORCH_REFERENCE: quality_result(bench.TORCH_REFERENCE, 2000.0, 252.0, 260.0),
        "default": quality_result("default", 1500.0, 250.0),
    }
    children = []

    def child(name, argv, out):
        children.append((name, argv))
        return fakes[argv[argv.index("--run-one") + 1]]

    monkeypatch.setattr(bench, "fashion_mnist", lambda data_dir: (images, images))
    monkeypatch.setattr(bench, "run_child", child)
    monkeypatch.setattr(bench, "run_torch_reference", lambda *args: fakes[bench.TORCH_REFERENCE])
    monkeypatch.setattr(
        bench,
        "SETTINGS",
        {**bench.SETTINGS, "quick": {**bench.SETTINGS["quick"], "checkpoints": (60,)}},
    )
    out, plot = tmp_path / "quick.json", tmp_path / "curves.png"
    argv = ["quick", "--models", "mlp,pytorch_reference,default", "--seed", "3"]
    main([*argv, "--torch-python", sys.executable, "--out", str(out), "--plot", str(plot)])

    # Each keras_vae model in a child `python -m benchmarks quality --quick`, the peer apart.
    assert [(name, a[a.index("--run-one") + 1]) for name, a in children] == [
        ("quality", "mlp"),
        ("quality", "default"),
    ]
    assert all("--quick" in a and a[a.index("--seed") + 1] == "3" for _, a in children)
    report = json.loads(out.read_text())
    assert report["command"].startswith("python -m benchmarks quick --quick --models mlp,")
    assert [r["model"] for r in report["results"]] == ["mlp", "pytorch_reference", "default"]
    assert report["comparisons"]["mlp_over_pytorch_reference_images_per_second"] == 1.5
    table = bench.comparisons_table(report)
    assert "| `mlp` / `pytorch_reference`, training images/s | 3,000 / 2,000 = 1.50x |" in table
    # The peers are the PyTorch and the keras.io references, never another preset.
    assert "| `default` - best peer at 60 s | 250.00 - 252.00 (`pytorch_reference`)" in table
    assert bench.table(report).count("\n") == 2 + 3 - 1
    assert plot.exists()


def test_the_data_benchmark_links_pictures_and_tables_its_targets(tmp_path):
    from benchmarks import data_pipeline

    (tmp_path / "emoji" / "Faces").mkdir(parents=True)
    for name in ("a.png", "b.png", "c.png"):
        (tmp_path / "emoji" / "Faces" / name).write_bytes(name.encode())
    data_pipeline.linked_folder(str(tmp_path / "emoji"), str(tmp_path / "many"), 7)
    names = sorted(os.listdir(tmp_path / "many"))
    assert names == [f"{i:06d}.png" for i in range(7)]
    contents = [(tmp_path / "many" / name).read_bytes() for name in names]
    assert contents == [b"a.png", b"b.png", b"c.png"] * 2 + [b"a.png"]
    memory = [
        {
            "images": 10_000,
            "peak_rss_mb": 1000.0,
            "seconds": 20,
            "images_per_second_after_first_epoch": 900,
        },
        {
            "images": 200_000,
            "peak_rss_mb": 1120.0,
            "seconds": 300,
            "images_per_second_after_first_epoch": 880,
        },
    ]
    assert "| 200,000 | 1,120 | +120 | 300 | 880 |" in data_pipeline.memory_table(
        {"memory": memory}
    )
    run = {"images_per_second_after_first_epoch": 10_000.0, "test_negative_elbo_own_split": 240.0}
    result = {
        "settings": {"epochs": 10},
        "idx": {**run, "test_negative_elbo_idx_test": 241.0},
        "folder": {
            **run,
            "images_per_second_after_first_epoch": 8_000.0,
            "test_negative_elbo_idx_test": 241.3,
        },
    }
    table = data_pipeline.speed_table(result)
    assert "| IDX / folder | 1.25x | +0.30 nats | |" in table

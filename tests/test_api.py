"""The Python API (`import avca_tf as avca`, avca_tf/api.py): the README's snippet runs as
written, the package imports without TensorFlow, the thread pools are set or refused with
the fix, and run_config resolves what `avca train` resolves."""
import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import avca_tf as avca
from avca_tf.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def readme_python_block() -> str:
    """The ```python block of README.md's "## Python" section, verbatim."""
    section = REPO.joinpath("README.md").read_text().split("\n## Python\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1
    return blocks[0]


def _python(code: str, cwd, timeout=900):
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_readme_python_snippet_runs_as_written(tmp_path):
    proc = _python(readme_python_block(), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    run_dir = tmp_path / "runs" / "avca-quick"
    results = json.loads((run_dir / "results.json").read_text())
    hm, pools = lines[0].split(" ", 1)
    assert float(hm) == results["test"]["HM"]
    assert ast.literal_eval(pools) == {"intra_op": 1, "inter_op": 1}
    assert json.loads((run_dir / "timing.json").read_text())["thread_pools"] == {
        "intra_op": 1, "inter_op": 1}
    recomputed = ast.literal_eval(lines[1])
    for key in ("S", "U", "HM", "ZSL"):
        assert abs(recomputed[key] - results["test"][key]) <= 1e-6
    assert (tmp_path / "serving" / "avca" / "1" / "model.keras").is_file()
    assert (tmp_path / "serving" / "avca" / "1" / "saved_model.pb").is_file()
    n_classes = len(json.loads((run_dir / "model" / "classes.json").read_text())["class_names"])
    assert lines[2] == f"(4, {n_classes})"
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["train"]["epochs"] == 2 and cfg["train"]["seed"] == 0
    # the same run in this process, which has run TensorFlow before (with the run's pools):
    # the same bits as the snippet's fresh process
    again = avca.train(avca.run_config("avca", "Toy", root=tmp_path / "bench", schedule="quick",
                                       train__seed=0), tmp_path / "again")
    assert (tmp_path / "again" / "results.json").read_bytes() == \
        (run_dir / "results.json").read_bytes()
    assert again.thread_pools == {"intra_op": 1, "inter_op": 1}


def test_import_avca_tf_loads_no_tensorflow(tmp_path):
    proc = _python("import sys, avca_tf as avca; print('tensorflow' in sys.modules, "
                   "'keras' in sys.modules); import avca_tf.api; "
                   "print(sorted(avca.__all__) == sorted(avca_tf.api.__all__))", tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["False", "False", "True"]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        avca.nope  # noqa: B018


def test_threads_are_set_before_tensorflow_runs_and_refused_with_the_fix_after(tmp_path):
    code = ("import avca_tf as avca, tensorflow as tf\n"
            "from avca_tf.errors import ConfigError\n"
            "print(avca.set_threads(1, 1))\n"
            "tf.constant(1.0) + 1.0\n"
            "print(avca.set_threads(1, 1))\n"
            "try:\n    avca.set_threads(2, 1)\n"
            "except ConfigError as e:\n    print('ERR', e)\n")
    proc = _python(code, tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    first, second, err = proc.stdout.strip().splitlines()
    assert first == second == "(1, 1)"
    assert err.startswith("ERR TensorFlow already runs in this process with intra_op_threads=1, "
                          "inter_op_threads=1")
    assert "restart the Python process" in err and "avca.set_threads(2, 1)" in err
    assert "cfg.replace(train__intra_op_threads=1, train__inter_op_threads=1)" in err


def test_train_refuses_a_process_with_other_pools(toy_root, tmp_path):
    """This test process runs TF with one thread per pool (conftest): a run wanting others is
    refused before anything is written."""
    import tensorflow as tf
    tf.constant(1.0) + 1.0  # TensorFlow has run in this process: its pools are fixed
    cfg = avca.run_config("avca", "Toy", root=toy_root, schedule="quick",
                          train__intra_op_threads=2)
    with pytest.raises(ConfigError, match="intra_op_threads=1, inter_op_threads=1"):
        avca.train(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_run_config_resolves_as_avca_train(toy_root):
    from avca_tf.cli import build_parser
    from avca_tf.commands.train import build_config
    argv = ["train", "--root", str(toy_root), "--dataset", "Toy", "--out", "x", "--quick",
            "--model", "cjme", "--seed", "3"]
    cli_cfg = build_config(build_parser(argv).parse_args(argv))
    assert avca.run_config("cjme", "Toy", root=toy_root, schedule="quick",
                           train__seed=3) == cli_cfg
    # on the toy benchmark the default schedule is "toy", not the UCF preset's 50 x 500
    toy = avca.run_config("avca", "Toy", root=toy_root).train
    assert (toy.epochs, toy.n_batches, toy.batch_size) == (4, 40, 128)
    full = avca.run_config("avca", "Toy", root=toy_root, schedule="full").train
    assert (full.epochs, full.n_batches) == (50, 500)
    assert avca.run_config("tcaf", "Toy").data.temporal
    assert ("avca", "UCF", "main_features") in avca.presets("avca")
    assert set(avca.model_names()) >= {"avca", "tcaf", "clipclap", "ale"}
    with pytest.raises(ConfigError, match="unknown schedule 'fast'"):
        avca.run_config("avca", "Toy", schedule="fast")
    with pytest.raises(ConfigError, match="bad override"):
        avca.run_config("avca", "Toy", epochs=3)
    with pytest.raises(ConfigError, match="train.lr"):
        avca.run_config("avca", "Toy", train__lr=-1.0)


def test_load_model_names_what_to_do_without_a_keras_file(tmp_path):
    with pytest.raises(ConfigError, match=r"no such Keras model file .*keras=True"):
        avca.load_model(tmp_path)
    with pytest.raises(ConfigError, match="not a finished run"):
        avca.load_run(tmp_path)

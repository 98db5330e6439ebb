"""The `avca` command line behaves like the tools people know (issue 29): no prefix
matching, "did you mean" for flags and values, argument errors before TensorFlow is
imported, per-model preset values in --help, TensorFlow's start-up noise filtered."""
import os
import subprocess
import sys

import pytest

from avca_tf.cli import build_parser, filtered_stderr, main

# `avca ARGS` in a fresh process, then whether TensorFlow was imported.
PROBE = ("import sys\nfrom avca_tf.cli import main\ntry:\n    rc = main(sys.argv[1:])\n"
         "except SystemExit as e:\n    rc = e.code\n"
         "print('TF-IMPORTED' if 'tensorflow' in sys.modules else 'TF-NOT-IMPORTED')\n"
         "sys.exit(rc)\n")


def _probe(*args, env=None):
    return subprocess.run([sys.executable, "-c", PROBE, *map(str, args)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("args, message, hint", [
    (["train", "--epoch", "2", "--dataset", "Toy", "--out", "o"],
     "unrecognized arguments: --epoch 2", "did you mean --epochs?"),
    (["trian"], "invalid choice: 'trian'", "did you mean train?"),
    (["train", "--dataset", "ucf", "--out", "o"], "invalid choice: 'ucf'", "did you mean UCF?"),
    (["pipeline", "rn"], "invalid choice: 'rn'", "did you mean run?"),
    (["pipeline", "run", "--presett", "quick"], "unrecognized arguments: --presett",
     "did you mean --preset?"),
    (["export", "run", "--out", "s", "--word-vector", "w.txt"],
     "unrecognized arguments: --word-vector", "did you mean --word-vectors?"),
    (["train", "--dataset", "Toy", "--out", "o", "--batch-size", "100000"],
     "100000 is over the batch size limit 8192", "AVCA_MAX_BATCH_SIZE"),
    (["train", "--dataset", "Toy", "--out", "o", "--lr", "-1"], "--lr: must be", ""),
    (["train", "--dataset", "Toy", "--out", "o", "--epochs", "0"], "--epochs: must be >= 1", ""),
    (["train", "--dataset", "Toy", "--out", "o"], "--root (or --tfrecords) is required", ""),
    (["train", "--dataset", "Toy", "--root", "/nonexistent", "--out", "o"],
     "missing folder /nonexistent/Toy", "avca synth --out /nonexistent"),
    (["ingest", "--root", "r", "--dataset", "Toy", "--features", "main_features", "--out", "o",
      "--", "--runner=Bogus"], "--runner=Bogus: Unexpected pipeline runner", ""),
    (["ingest", "--root", "r", "--dataset", "Toy", "--features", "main_features", "--out", "o",
      "--", "--direct_num_workers=-3"], "--direct_num_workers=-3: expected 0", ""),
    (["reproduce", "--root", "r", "--table", "3", "--out", __file__],
     "exists and is not a directory", ""),
])
def test_bad_arguments_fail_before_tensorflow_with_a_hint(args, message, hint):
    r = _probe(*args)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and hint in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert "TF-NOT-IMPORTED" in r.stdout, "the argument error came after importing TensorFlow"


def test_unknown_flag_is_reported_with_the_subcommand_usage():
    r = _probe("train", "--epoch", "2", "--dataset", "Toy", "--out", "o")
    assert "usage: avca train" in r.stderr and "avca train: error:" in r.stderr, r.stderr


def test_limit_is_raised_by_its_environment_variable(tmp_path):
    args = ["train", "--dataset", "Toy", "--out", str(tmp_path / "o"), "--batch-size", "9000"]
    with pytest.raises(SystemExit):
        build_parser(args).parse_args(args)
    os.environ["AVCA_MAX_BATCH_SIZE"] = "10000"
    try:
        assert build_parser(args).parse_args(args).batch_size == 9000
    finally:
        del os.environ["AVCA_MAX_BATCH_SIZE"]


def test_library_refuses_batch_size_over_the_limit():
    from avca_tf.errors import ConfigError
    from avca_tf.training.presets import RunOverrides, run_config
    with pytest.raises(ConfigError, match="AVCA_MAX_BATCH_SIZE"):
        run_config("Toy", "main_features", RunOverrides(batch_size=100000))


def test_unknown_model_and_preset_get_a_suggestion(toy_root, tmp_path, capsys):
    rc = main(["train", "--dataset", "Toy", "--root", str(toy_root), "--out",
               str(tmp_path / "o"), "--model", "tcf"])
    assert rc == 2 and "did you mean tcaf?" in capsys.readouterr().err
    rc = main(["train", "--dataset", "Toy", "--root", str(toy_root), "--out",
               str(tmp_path / "o"), "--preset", "ucf-main"])
    assert rc == 2 and "did you mean UCF-main?" in capsys.readouterr().err


def test_help_shows_each_models_preset_values(monkeypatch):
    monkeypatch.setenv("COLUMNS", "2000")  # no line breaks inside preset names
    text = build_parser(["train"])._subparsers._group_actions[0].choices["train"].format_help()
    text = " ".join(text.split())
    lr = text[text.index("learning rate"):text.index("random seed")]
    assert "preset: 1e-3" in lr
    assert "5e-5 on UCF-main" in lr and "tcaf" in lr  # TCaF's UCF main learning rate
    assert "clipclap 7e-5 on UCF-clipclap" in lr
    assert "clipclap, tcaf 300" in text  # n_batches of the sequence models


def test_filtered_stderr_drops_tensorflow_start_up_lines_only(capfd):
    with filtered_stderr():
        os.write(2, b"E0000 00:00:1 123 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n")
        os.write(2, b"I0000 00:00:1 123 port.cc:153] oneDNN custom operations are on.\n")
        os.write(2, b"a real warning\n")
    err = capfd.readouterr().err
    assert err == "a real warning\n"


def test_tensorflow_start_up_noise_is_not_printed(toy_root):
    """A command that imports TensorFlow prints none of its start-up lines at the default
    TF_CPP_MIN_LOG_LEVEL (2)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    r = subprocess.run([sys.executable, "-m", "avca_tf.cli", "inspect", str(toy_root),
                        "--dataset", "Toy"], capture_output=True, text=True, timeout=300,
                       env=env)
    assert r.returncode == 0, r.stderr
    for noise in ("cuInit", "oneDNN", "cudart_stub", "cpu_feature_guard", "absl::InitializeLog"):
        assert noise not in r.stderr, r.stderr


def test_training_log_has_one_plain_line_per_epoch_when_not_a_terminal(toy_root, tmp_path):
    """Issue 29: logs written to a file carried ANSI progress-bar codes."""
    r = subprocess.run([sys.executable, "-m", "avca_tf.cli", "train", "--root", str(toy_root),
                        "--dataset", "Toy", "--quick", "--epochs", "1", "--out",
                        str(tmp_path / "run")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "\x1b[" not in r.stdout + r.stderr and "\r" not in r.stdout + r.stderr
    assert r.stdout.count("5/5 - ") == 2, r.stdout  # one line per epoch of each stage


def _request_client():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "deploy" / "avca_request.py"
    spec = importlib.util.spec_from_file_location("avca_request_cli", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_request_client_without_server_says_error_without_traceback(capsys):
    client = _request_client()
    import socket
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for transport in ("grpc", "rest"):
        rc = client.main(["--transport", transport, "--grpc-port", str(port), "--rest-port",
                          str(port), "--audio-dim", "2", "--video-dim", "2", "--timeout", "5"])
        err = capsys.readouterr().err
        assert rc == 1 and err.startswith(f"error: {transport} request to "), err
        assert "Traceback" not in err and "debug_error_string" not in err
        assert len(err.strip().splitlines()) == 1, err


def test_request_client_prints_a_readable_request_and_defaults_in_help(capsys):
    client = _request_client()
    assert client.main(["--signature", "classify_open", "--class-names", "a b", "--batch", "1",
                        "--audio-dim", "2", "--video-dim", "2", "--print-request"]) == 0
    out = capsys.readouterr().out
    assert "tensor_content" not in out and out.count("float_val:") == 4
    assert 'string_val: "a b"' in out
    with pytest.raises(SystemExit):
        client.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 8500)" in text and "(default: serving_default)" in text
    with pytest.raises(SystemExit):
        client.main(["--grpc", "1"])  # no prefix matching


def test_sequences_over_the_step_limit_are_refused_before_training(tmp_path, monkeypatch,
                                                                   capsys):
    """Issue 29: one 10,000-step video ended in a ResourceExhausted traceback."""
    from avca_tf.data.synthesis.synth import synthesize
    synthesize(tmp_path / "bench", temporal=True, scale=0.2, seed=0)
    monkeypatch.setenv("AVCA_MAX_SEQUENCE_STEPS", "3")
    rc = main(["train", "--root", str(tmp_path / "bench"), "--dataset", "Toy", "--model",
               "tcaf", "--quick", "-q", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2 and "is over the sequence steps limit 3" in err and "video '" in err, err
    assert "AVCA_MAX_SEQUENCE_STEPS" in err
    assert not (tmp_path / "run" / "results.json").exists()

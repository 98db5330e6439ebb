"""Every command block of README.md and docs/*.md runs as written (issue 29).

A command block is a fenced block (```bash, ```sh or plain ```) with at least one
line that starts with a command (`avca`, `python`, `bash`, ...). Each runs, in the
order of its file, in a working directory of its own file (relative outputs of one
block are the inputs of the next), with $ROOT a synthetic UCF benchmark (the
features a user downloads, docs/data.md). A command passes when it exits 0 and prints
no traceback and no terminal control codes.

A block that cannot run here is marked on the line above its fence with
`<!-- not-run: REASON -->` (a server, real data, a cluster, a usage synopsis, minutes
of CPU that other tests spend): the test checks every such block has a reason.

To keep the suite's budget the commands run in this process (no TensorFlow start-up
per command) with three shortcuts, none of which changes what a command checks or
prints: `avca train` runs the --quick schedule; `avca synth` of a real-split dataset
writes scale 0.05; a `synth`/`ingest`/`train` whose arguments (apart from --out and
Beam options) and input data equal an earlier one's gets a copy of that output.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from avca_tf import cli

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
COMMANDS = ("avca", "python", "bash", "curl", "docker", "kubectl", "saved_model_cli", "pip",
            "tensorboard", "git", "gsutil")
NOT_RUN = re.compile(r"<!--\s*not-run:\s*(.*?)\s*-->")
SYNTH_SCALE = "0.05"


@dataclass
class Block:
    path: Path
    line: int                # line of the opening fence (1-based)
    commands: list           # command lines, continuation lines joined
    not_run: str | None      # the marker's reason; None: the block runs

    def __str__(self):
        return f"{self.path.relative_to(REPO)}:{self.line}"


def _is_command(line: str) -> bool:
    words = line.split()
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):  # VAR=value prefixes
        words = words[1:]
    return bool(words) and words[0] in COMMANDS


def command_blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = re.match(r"^\s*```(\w*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        start, body = i, []
        i += 1
        while i < len(lines) and not lines[i].lstrip().startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1
        if fence.group(1) not in ("", "bash", "sh", "console"):
            continue
        joined, current = [], ""
        for raw in body:
            current += raw.rstrip()
            if current.endswith("\\"):
                current = current[:-1] + " "
                continue
            if current.strip() and not current.lstrip().startswith("#"):
                joined.append(current.strip())
            current = ""
        commands = [c for c in joined if _is_command(c)]
        if not commands:
            continue  # sample output, a file listing, ...
        above = start - 1
        while above >= 0 and not lines[above].strip():
            above -= 1
        marker = NOT_RUN.search(lines[above]) if above >= 0 else None
        blocks.append(Block(path, start + 1, commands, marker.group(1) if marker else None))
    return blocks


class Runner:
    """Runs the commands of the docs, sharing equal synth/train outputs (see the module doc)."""

    def __init__(self, base: Path):
        self.base = base
        self.cache = base / ".cache"
        self.cache.mkdir(parents=True, exist_ok=True)
        self.outputs: dict = {}  # key of a synth/ingest/train -> its output

    def synth(self, argv: list) -> int:
        args = cli.build_parser(argv).parse_args(argv)
        if args.dataset not in (None, "Toy") or args.splits:
            argv = _set_flag(argv, "--scale", SYNTH_SCALE)
        return self.shared(argv)

    def train(self, argv: list) -> int:
        if "--quick" not in argv:
            argv = argv + ["--quick"]
        if "-q" not in argv and "--quiet" not in argv:
            argv = argv + ["-q"]
        return self.shared(argv)

    def shared(self, argv: list) -> int:
        """Runs `avca ARGV` (synth, ingest, train), or copies the output of an earlier run
        with the same arguments (apart from --out and Beam options) on the same data."""
        args = cli.build_parser(argv).parse_args(argv)
        root = getattr(args, "root", None)
        pattern = f"{getattr(args, 'dataset', '*')}/synth_{getattr(args, 'features', '')}*.json"
        data = [args.tfrecords] if getattr(args, "tfrecords", None) else sorted(
            p.read_text() for p in Path(root).glob(pattern)) if root else []
        key = json.dumps([{k: v for k, v in sorted(vars(args).items())
                           if k not in ("out", "root", "tfrecords", "beam_args")}, data])
        if key in self.outputs and not getattr(args, "resume", False):
            shutil.copytree(self.outputs[key], args.out, dirs_exist_ok=True)
            return 0
        private = self.cache / str(len(self.outputs))  # a copy no later command changes
        rc = self.avca(_set_flag(argv, "--out", str(private)))
        if rc == 0:
            self.outputs[key] = private
            shutil.copytree(private, args.out, dirs_exist_ok=True)
        return rc

    def avca(self, argv: list) -> int:
        try:
            return int(cli.main(argv) or 0)
        except SystemExit as e:  # argparse
            return int(e.code or 0)

    def run(self, line: str) -> tuple[int, str]:
        """(exit status, output) of one command line."""
        words = [os.path.expandvars(w) for w in shlex.split(line, comments=True)]
        out, err = io.StringIO(), io.StringIO()
        if words[0] == "avca":
            argv = words[1:]
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                rc = {"synth": self.synth, "train": self.train,
                      "ingest": self.shared}.get(argv[0], self.avca)(argv)
            return rc, out.getvalue() + err.getvalue()
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        r = subprocess.run(line, shell=True, capture_output=True, text=True, timeout=300,
                           env=env)
        return r.returncode, r.stdout + r.stderr


def _set_flag(argv: list, flag: str, value: str) -> list:
    argv = list(argv)
    if flag in argv:
        argv[argv.index(flag) + 1] = value
    else:
        argv += [flag, value]
    return argv


BLOCKS = {path.name: command_blocks(path) for path in DOCS}


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    return Runner(tmp_path_factory.mktemp("docs"))


def test_not_run_markers_give_a_reason():
    for blocks in BLOCKS.values():
        for b in blocks:
            assert b.not_run is None or len(b.not_run) >= 8, f"{b}: not-run without a reason"


@pytest.mark.parametrize("doc", [p.name for p in DOCS])
def test_doc_commands_run_as_written(doc, runner, monkeypatch):
    work = runner.base / doc.replace(".md", "")
    work.mkdir()
    for name in ("avca_tf", "deploy", "benchmarks"):  # paths the docs give from the repo root
        (work / name).symlink_to(REPO / name)
    monkeypatch.chdir(work)
    monkeypatch.setenv("ROOT", str(work / "ROOT"))
    assert runner.synth(["synth", "--dataset", "UCF", "--features", "main_features",
                         "--out", str(work / "ROOT")]) == 0
    for block in BLOCKS[doc]:
        if block.not_run:
            continue
        for line in block.commands:
            rc, output = runner.run(line)
            where = f"{block}: `{line}`"
            assert "Traceback (most recent call last)" not in output, f"{where}\n{output}"
            assert rc == 0, f"{where} exited {rc}\n{output[-3000:]}"
            assert "\x1b[" not in output and "\r" not in output, f"{where}: control codes"

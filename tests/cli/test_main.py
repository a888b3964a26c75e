"""The dispatcher: fast help without the heavy stack, one-line errors with suggestions, exit code 2, --debug."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from boltir import ConfigError, TupleDataset
from boltir.cli import main

main_module = importlib.import_module("boltir.cli.main")  # the package's `main` attribute is the function

SRC = Path(__file__).resolve().parents[2] / "src"


def _run(*args: str) -> subprocess.CompletedProcess:
    code = "import sys; from boltir.cli.main import main; main(sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env={"PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize("args", [["--help"], ["index", "--help"], ["fit", "-h"], ["search", "--help"], ["re_rank", "--help"]])
def test_help_imports_neither_torch_nor_lightning(args):
    code = ("import atexit, sys\n"
            "atexit.register(lambda: print('HEAVY', sorted({'torch', 'lightning', 'transformers'} & set(sys.modules))))\n"
            "from boltir.cli.main import dispatch\ndispatch(sys.argv[1:])")  # argparse's --help exits
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout and "usage: boltir" in done.stdout


def test_every_command_is_routed():
    """Each Lightning subcommand and each command module is one row of the table, and the overview lists them."""
    lightning = importlib.import_module(main_module.LIGHTNING)
    routed = {name for name, command in main_module.COMMANDS.items() if command.module == main_module.LIGHTNING}
    assert routed == set(lightning.BoltirCLI.subcommands())
    modules = {name: command.module for name, command in main_module.COMMANDS.items() if name not in routed}
    command_modules = {f"boltir.cli.{f.stem}" for f in Path(main_module.__file__).parent.glob("*.py")
                       if f.stem not in ("main", "lightning") and not f.stem.startswith("_")}  # _x: helpers
    assert set(modules.values()) == command_modules  # every command module in cli/ is reachable from `boltir`
    for module in modules.values():
        loaded = importlib.import_module(module)
        assert callable(loaded.add_arguments) and callable(loaded.run)
    overview = _run("--help").stdout
    assert all(f"  {name} " in overview for name in main_module.COMMANDS)


@pytest.mark.parametrize(("args", "expected"), [
    (["serve", "--help"], "--max-batch-size"),
    (["cache-embeddings", "--help"], "--cache_path"),
    (["cache_embeddings", "--help"], "--cache_path"),
    (["tuples", "--help"], "--teacher-run"),
])
def test_command_module_help(args, expected):
    done = _run(*args)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: boltir {main_module._ALIASES.get(args[0], args[0])}") and expected in done.stdout


def test_a_new_command_is_one_row(tmp_path, monkeypatch, capsys):
    (tmp_path / "hello_cmd.py").write_text(
        "def add_arguments(parser):\n    parser.add_argument('--name', default='world')\n\n"
        "def run(args):\n    print('hello', args.name)\n    return 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(main_module.COMMANDS, "hello", main_module.Command("hello_cmd", "say hello"))
    with pytest.raises(SystemExit) as exit_info:
        main(["hello", "--name", "boltir"])
    assert exit_info.value.code == 3 and capsys.readouterr().out == "hello boltir\n"


def test_a_missing_optional_package_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "needs_pkg.py").write_text("import surely_not_installed_pkg\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(main_module.COMMANDS, "needy", main_module.Command("needs_pkg", "needs a package"))
    with pytest.raises(SystemExit) as exit_info:
        main(["needy"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "boltir: error: 'boltir needy' needs the package 'surely_not_installed_pkg', which is not installed")


def test_lightning_help_is_grouped_and_short():
    done = _run("search", "--help")
    assert done.returncode == 0
    for group in ("Config:", "Search:", "Run:", "Model:", "Trainer:"):
        assert group in done.stdout
    assert "--help-all" in done.stdout and len(done.stdout.splitlines()) < 50


def test_unknown_command_is_one_line_with_a_suggestion():
    done = _run("indx")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["boltir: error: unknown command 'indx' — did you mean 'index'? (see: boltir --help)"]


def test_a_command_whose_module_is_missing_says_so(monkeypatch, capsys):
    monkeypatch.setitem(main_module.COMMANDS, "later", main_module.Command("boltir.cli.not_yet_here", "lands later"))
    with pytest.raises(SystemExit) as exit_info:
        main(["later"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "boltir: error: 'boltir later' is not part of this installation yet (boltir.cli.not_yet_here is missing)"
    )


def test_typo_in_a_light_command_suggests_the_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["tuples", "--data", "d", "--rnu", "r", "--out", "o"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == "boltir: error: unknown option 'rnu' — did you mean 'run'?"


def _index_config(tmp_path, model_dir, beir) -> Path:
    config = {
        "model": {"class_path": "boltir.BiEncoderModule", "init_args": {"model_name_or_path": str(model_dir)}},
        "data": {"class_path": "boltir.DataModule", "init_args": {
            "inference_datasets": [{"class_path": "boltir.DocDataset", "init_args": {"source": str(beir)}}]}},
        "trainer": {"accelerator": "cpu", "enable_progress_bar": False},
        "index_dir": str(tmp_path / "index"),
    }
    path = tmp_path / "index.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(("option", "message"), [
    ("--data.init_args.inference_batch_sze", "unknown option 'inference_batch_sze' — did you mean 'inference_batch_size'?"),
    ("--index_dri", "unknown option 'index_dri' — did you mean 'index_dir'?"),
])
def test_typo_in_a_lightning_command_is_one_line_with_a_suggestion(option, message, tiny_bert_dir, tiny_beir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["index", "--config", str(_index_config(tmp_path, tiny_bert_dir, tiny_beir)), option, "3"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == f"boltir: error: {message}"


def test_missing_config_file_is_one_line_with_a_suggestion(tmp_path, capsys):
    (tmp_path / "scifact-index.yaml").write_text("{}")
    with pytest.raises(SystemExit) as exit_info:
        main(["index", "--config", str(tmp_path / "scifact-indx.yaml")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"boltir: error: config file '{tmp_path / 'scifact-indx.yaml'}' does not exist — did you mean '{tmp_path / 'scifact-index.yaml'}'?"
    )


def test_boltir_errors_are_one_line_unless_debugging(tmp_path, capsys, monkeypatch):
    args = ["tuples", "--data", str(tmp_path), "--run", str(tmp_path / "none.run"), "--out", str(tmp_path / "t.jsonl"), "--negatives", "-1"]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == "boltir: error: --negatives must be >= 0, got -1."
    with pytest.raises(ConfigError):
        main([*args, "--debug"])
    monkeypatch.setenv("BOLTIR_DEBUG", "1")
    with pytest.raises(ConfigError):
        main(args)


def test_tuples_writes_what_tuple_dataset_reads(tiny_train_beir, tmp_path, capsys):
    out = tmp_path / "train.jsonl"
    main(["tuples", "--data", str(tiny_train_beir), "--run", str(tiny_train_beir / "first-stage.run"),
          "--window", "0:4", "--negatives", "2", "--out", str(out)])
    assert "wrote 3 queries" in capsys.readouterr().out
    dataset = TupleDataset(out, list_size=3)
    assert len(dataset) == 3 and all(len(r.negatives) <= 2 for r in dataset.records)

"""The ``boltir`` command: a dispatcher that imports a subcommand's code only when that command runs.

``boltir --help`` and the Lightning commands' ``--help`` answer without importing torch or Lightning. The
Lightning commands (fit, index, search, re_rank) run through :mod:`boltir.cli.lightning`; every other command is
a module ``boltir.cli.<name>`` with ``add_arguments(parser)`` and ``run(args) -> int``, imported (with whatever
it imports) only when that command runs or shows its help. Adding one is one row in :data:`COMMANDS`.

Errors a user causes print as one line ``boltir: error: ...`` and exit with code 2; ``--debug`` (anywhere on
the command line) or ``BOLTIR_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import inspect
import os
import re
import sys
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from .._config_files import config_origin
from ..errors import BoltirError

LIGHTNING = "boltir.cli.lightning"


@dataclass(frozen=True)
class Command:
    module: str  # dotted path, imported when the command runs
    summary: str
    groups: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # the options users set, by group


_MODEL = [("--model.init_args.model_name_or_path NAME", "model directory or hub name"),
          ("--model.init_args.config_overrides JSON", "change saved config options, e.g. '{\"doc_length\": 128}'")]
_TRAINER = [("--trainer.accelerator {auto,cpu,gpu}", "where to run (default: auto)"),
            ("--trainer.devices N", "GPUs to use"),
            ("--trainer.precision P", "32-true, bf16-mixed, 16-mixed")]
_INFERENCE_DATA = [("--data.init_args.inference_batch_size N", "texts per batch (queries per batch for re_rank)"),
                   ("--data.init_args.num_workers N", "DataLoader worker processes")]
_RUN = [("--run_dir DIR", "folder of <run name>.run and .metrics.json (default: runs)"),
        ("--run_name NAME", "the run's name (default: the data folder and split, e.g. scifact-test)"),
        ("--run_path FILE", "exact run file instead (a list: one per dataset)"),
        ("--measures LIST", "ir-measures names, e.g. [nDCG@10,RR@10,R@100]")]
_CONFIG = [("--config FILE", "YAML config (examples: configs/*.yaml); later options override it")]

COMMANDS: dict[str, Command] = {
    "fit": Command(LIGHTNING, "fine-tune a model (Trainer.fit)", {
        "Config": _CONFIG + [("--ckpt_path {last,FILE}", "resume an interrupted run"),
                             ("--seed_everything N", "seed of the whole run")],
        "Model": _MODEL + [("--model.init_args.loss_functions", "losses over each list"),
                           ("--model.init_args.in_batch_loss", "loss over every document of the batch")],
        "Data": [("--data.init_args.train_dataset", "TupleDataset, RunTupleDataset, MixedTupleDataset"),
                 ("--data.init_args.batch_size N", "queries per training batch")],
        "Optimisation": [("--optimizer CLASS", "e.g. torch.optim.AdamW (with --optimizer.init_args.lr)"),
                         ("--lr_scheduler CLASS", "e.g. boltir.LinearWarmupDecay")],
        "Trainer": _TRAINER + [("--trainer.max_epochs N / --trainer.max_steps N", "length of training"),
                               ("--trainer.accumulate_grad_batches N", "gradient accumulation")],
    }),
    "index": Command(LIGHTNING, "encode every document into an index (Trainer.index)", {
        "Config": _CONFIG,
        "Index": [("--index_dir DIR", "where the index goes (replaced only once complete)"),
                  ("--index_config CLASS", "engine: boltir.FaissIndexConfig, TorchIndexConfig, SeismicIndexConfig, ...")],
        "Model": _MODEL, "Data": _INFERENCE_DATA, "Trainer": _TRAINER,
    }),
    "search": Command(LIGHTNING, "search an index with every query, write and evaluate runs (Trainer.search)", {
        "Config": _CONFIG,
        "Search": [("--index_dir DIR", "the index to search"), ("--k N", "results per query (default: 100)"),
                   ("--search_settings JSON", "engine settings, e.g. '{\"nprobe\": 32}'")],
        "Run": _RUN, "Model": _MODEL, "Data": _INFERENCE_DATA, "Trainer": _TRAINER,
    }),
    "re_rank": Command(LIGHTNING, "re-score a run's candidates, write and evaluate runs (Trainer.re_rank)", {
        "Config": _CONFIG, "Run": _RUN, "Model": _MODEL, "Data": _INFERENCE_DATA, "Trainer": _TRAINER,
    }),
    # commands with their own module (add_arguments(parser), run(args) -> int): one row each
    "cache-embeddings": Command("boltir.cli.cache_embeddings", "build a LightRetriever model's query token cache beside it"),
    "export": Command("boltir.cli.export", "export a model's backbone to ONNX (optionally int8) for ONNX Runtime"),
    "push": Command("boltir.cli.push", "upload a model directory (with its model card) to the Hugging Face Hub"),
    "serve": Command("boltir.cli.serve", "serve an index (and re-ranker) over HTTP, with a search page"),
    "verify": Command("boltir.cli.verify", "check an index's files against the SHA-256 sums in its manifest"),
    "tuples": Command("boltir.cli.tuples", "training tuples (JSONL for TupleDataset) from a BEIR folder and a run"),
}
_ALIASES = {"re-rank": "re_rank", "cache_embeddings": "cache-embeddings"}


class UsageError(Exception):
    """A mistake on the command line: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a mistake in one line (with a suggestion) instead of usage + message."""

    def parse_args(self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None):  # type: ignore[override]
        known = [o for action in self._actions for o in action.option_strings]
        for token in args if args is not None else sys.argv[1:]:
            name = token.split("=", 1)[0]
            if name.startswith("--") and name != "--" and name not in known:  # before "required" complaints
                raise UsageError(unknown_option(name, known))
        return super().parse_args(args, namespace)

    def error(self, message: str):  # type: ignore[override]
        match = re.match(r"unrecognized arguments: (\S+)", message)
        if match:
            known = [o for action in self._actions for o in action.option_strings if o.startswith("--")]
            raise UsageError(unknown_option(match.group(1).split("=")[0], known))
        raise UsageError(f"{message} (see: {self.prog} --help)")


def unknown_option(given: str, known: Sequence[str]) -> str:
    """``unknown option 'x' — did you mean 'y'?`` with the closest known name (compared without dashes)."""
    bare = given.lstrip("-")
    names = {name.lstrip("-"): name for name in known}
    close = difflib.get_close_matches(bare, list(names), n=1, cutoff=0.6)
    hint = f" — did you mean '{close[0]}'?" if close else ""
    return f"unknown option '{bare}'{hint}"


def _debug(args: list[str]) -> tuple[bool, list[str]]:
    wanted = os.environ.get("BOLTIR_DEBUG", "").lower() in {"1", "true", "yes"}
    return wanted or "--debug" in args, [a for a in args if a != "--debug"]


def _overview() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: boltir <command> [options]   (boltir <command> --help for its options)", "",
             "Fine-tune, index, search, re-rank and evaluate transformer retrieval models.", "", "commands:"]
    lines += [f"  {name:<{width}}  {command.summary}" for name, command in COMMANDS.items()]
    lines += ["", "--debug (or BOLTIR_DEBUG=1) shows the traceback of an error."]
    return "\n".join(lines)


def _lightning_help(name: str, command: Command) -> str:
    lines = [f"usage: boltir {name} --config FILE [--option value ...]", "", command.summary[:1].upper() + command.summary[1:] + ".",
             "Every option of the config can be set or overridden on the command line."]
    width = max(len(o) for options in command.groups.values() for o, _ in options)
    for group, options in command.groups.items():
        lines += ["", f"{group}:"] + [f"  {option:<{width}}  {text}" for option, text in options]
    lines += ["", f"All options (loads Lightning, a few seconds): boltir {name} --help-all"]
    return "\n".join(lines)


def _check_config_files(args: list[str]) -> None:
    """A config file that does not exist fails here, in one line, before Lightning is imported."""
    for position, arg in enumerate(args):
        value = arg.split("=", 1)[1] if arg.startswith("--config=") else None
        if arg in ("--config", "-c") and position + 1 < len(args):
            value = args[position + 1]
        if value is None or value.lstrip().startswith(("{", "[")) or Path(value).is_file():
            continue
        path = Path(value)
        siblings = [p.name for p in path.parent.glob("*.y*ml")] if path.parent.is_dir() else []
        close = difflib.get_close_matches(path.name, siblings, n=1)
        hint = f" — did you mean '{path.parent / close[0]}'?" if close else ""
        raise UsageError(f"config file '{value}' does not exist{hint}")


def _run_lightning(name: str, rest: list[str]) -> int:
    if any(a in ("-h", "--help") for a in rest):
        print(_lightning_help(name, COMMANDS[name]))
        return 0
    rest = ["--help" if a == "--help-all" else a for a in rest]
    _check_config_files(rest)
    module = importlib.import_module(LIGHTNING)
    try:
        module.run_lightning([name, *rest])
    except argparse.ArgumentError as exc:
        cause = _user_error(exc)  # a boltir check that failed while the config was read says it best
        raise UsageError(str(cause) if cause else _argument_error(str(exc), name, module)) from exc
    return 0


def _argument_error(message: str, command: str, lightning: ModuleType) -> str:
    """jsonargparse's nested message cut to its cause, with the closest option name where one was misspelt."""
    nested = re.search(r"Problem with given class_path '([\w.]+)':\s*Option '(\w+)' is not accepted", message)
    if nested:
        return unknown_option(nested.group(2), _init_parameters(nested.group(1)))
    unrecognized = re.search(r"unrecognized arguments: (\S+)", message, re.IGNORECASE)
    if unrecognized:
        return unknown_option(unrecognized.group(1).split("=")[0], lightning.command_options(command))
    config = re.search(r'Parser key "config":\s*(.*)', message)
    if config:
        return config.group(1).strip()
    first = next((line.strip() for line in message.splitlines() if line.strip()), message)
    return f"{first} (see: boltir {command} --help)"


def _init_parameters(class_path: str) -> list[str]:
    module, _, name = class_path.rpartition(".")
    try:
        return list(inspect.signature(getattr(importlib.import_module(module), name)).parameters)
    except (ImportError, AttributeError, ValueError, TypeError):
        return []


def _run_module(name: str, command: Command, rest: list[str]) -> int:
    try:
        module = importlib.import_module(command.module)
    except ModuleNotFoundError as exc:
        if exc.name == command.module:
            raise UsageError(f"'boltir {name}' is not part of this installation yet ({command.module} is missing)") from None
        if exc.name and not exc.name.startswith("boltir"):  # an optional package the command needs
            raise UsageError(f"'boltir {name}' needs the package '{exc.name}', which is not installed") from None
        raise
    parser = _Parser(prog=f"boltir {name}", description=command.summary[:1].upper() + command.summary[1:] + ".", allow_abbrev=False)
    module.add_arguments(parser)
    return int(module.run(parser.parse_args(rest)) or 0)


def dispatch(args: list[str]) -> int:
    """Run one command line (without the program name); returns the exit code."""
    if not args or args[0] in ("-h", "--help", "help"):
        print(_overview())
        return 0
    name, rest = _ALIASES.get(args[0], args[0]), args[1:]
    if name not in COMMANDS:
        if name.startswith("-"):
            raise UsageError(unknown_option(name, ["--help", "--debug"]))
        close = difflib.get_close_matches(name, list(COMMANDS), n=1)
        raise UsageError(f"unknown command '{name}'" + (f" — did you mean '{close[0]}'?" if close else "") +
                         " (see: boltir --help)")
    command = COMMANDS[name]
    if command.module == LIGHTNING:
        return _run_lightning(name, rest)
    return _run_module(name, command, rest)


def main(args: list[str] | None = None) -> None:
    """The ``boltir`` entry point; exits with the command's code, or 2 after a one-line error."""
    debug, given = _debug(list(sys.argv[1:] if args is None else args))
    try:
        code = dispatch(given)
    except (UsageError, BoltirError) as exc:
        if debug:
            raise
        _print_error(exc)
    except Exception as exc:
        cause = _user_error(exc)
        if cause is None or debug:
            raise
        _print_error(cause)
    if code:
        raise SystemExit(code)


def _print_error(exc: BaseException) -> typing.NoReturn:
    """One line on stderr, then exit code 2; a path resolved from a config file says where it was written."""
    message = str(exc)
    origin = config_origin(message)
    suffix = f" (written as {origin})" if origin else ""
    print(f"boltir: error: {message}{suffix}", file=sys.stderr, flush=True)
    raise SystemExit(2) from None


def _user_error(exc: BaseException | None) -> BoltirError | None:
    """The BoltirError behind ``exc``; jsonargparse wraps errors raised while it instantiates classes."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, BoltirError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


if __name__ == "__main__":
    main()

"""The LightningModule base: a boltir model plus what Lightning needs to index, search, re-rank and train it."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import lightning.pytorch as pl
import torch
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor
from transformers import PreTrainedModel

from ..data.batches import DocBatch, Encoding, QueryBatch, RankBatch, TrainBatch
from ..data.datamodule import DataModule
from ..errors import ConfigError, check_positive
from ..eval import parse_measures
from ..loss import build_loss
from ..models import MODEL_FAMILIES, BoltirConfig, BoltirModel, read_family, resolve_model_dir
from ..models.card import TrainingSummary
from ..models.hub import push_directory
from ..models.onnx_backbone import OnnxBackbone, check_backend
from ..models.onnx_cache import onnx_runtime_model
from ..types import EncodeOutput, ScoreOutput, SingleScoreOutput
from .device import default_batch_size, packs_sequences

log = logging.getLogger(__name__)

# Set to "torch" to make backend="auto" run PyTorch everywhere (boltir's own test suite does, for speed).
BACKEND_ENV = "BOLTIR_BACKEND"

# What ``loss_functions`` accepts in YAML: a name, {name: ..., option: ...}, or a list of those with weights.
LossConfig = str | dict[str, Any] | list[str | dict[str, Any]]


def default_backend(backend: str) -> str:
    """``backend``, or ``torch`` for ``auto`` where ``$BOLTIR_BACKEND`` says so."""
    check_backend(backend)
    chosen = os.environ.get(BACKEND_ENV, "auto") or "auto"
    if chosen not in ("auto", "torch"):
        raise ConfigError(f"{BACKEND_ENV}={chosen} is not a default backend: set it to 'torch' or 'auto' (or unset it).")
    return chosen if backend == "auto" else backend


class BoltirModule(pl.LightningModule):
    """Holds a model and runs its steps: predict (index, search, re-rank), training and validation.

    Training (``boltir fit``): :meth:`training_step` scores each batch's lists with :meth:`rank_scores` (with
    gradients) and applies ``loss_functions`` against the batch's targets, so a family that implements
    ``rank_scores`` can be fine-tuned. The optimiser and LR schedule come from the config's ``optimizer:`` and
    ``lr_scheduler:`` sections (AdamW at lr 2e-5 without them).

    Args:
        model_name_or_path: a saved boltir model, an HF / sentence-transformers directory, or a hub name.
        config: the family's config, replacing the saved one.
        model: an already built model (instead of ``model_name_or_path``).
        loss_functions: the ranking loss, as :func:`boltir.loss.build_loss` takes it: ``infonce``,
            ``{name: kl_divergence, temperature: 2}`` or a list of those with ``weight`` keys.
        val_measures: ir-measures names logged as ``val/<measure>`` after re-ranking ``data.val_datasets`` (by
            :class:`boltir.callbacks.RankingValidation`, which boltir's Trainer attaches).
        gradient_checkpointing: recompute activations in the backward pass (less memory, ~30% slower).
        config_overrides: options to change in the saved (or given) config, e.g. ``{doc_length: 128}``; in YAML
            a dict under ``config:`` would become a whole config with defaults for every other option.
        encode_batch_size: texts (bi-encoders) or query-document pairs (cross-encoders) per forward pass when
            encoding or scoring; by default 256 on a GPU and 64 on a CPU.
        backend: ``"auto"`` (the default) runs inference on a CPU on ONNX Runtime: the backbones are exported once
            into boltir's cache (keyed by their weights' hash; a one-line notice says so) and everything else stays
            the same; training, gradients, GPUs and families that do not export run PyTorch. ``"torch"`` always
            runs PyTorch (so does ``auto`` where the environment sets ``BOLTIR_BACKEND=torch``); ``"onnx"`` loads
            a directory written by ``boltir export onnx`` (inference only, no ``fit``).
    """

    model_class: ClassVar[type[BoltirModel]] = BoltirModel

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str] | None = None,
        config: BoltirConfig | dict | None = None,
        model: BoltirModel | None = None,
        loss_functions: LossConfig | None = "infonce",
        val_measures: Sequence[str] = ("nDCG@10",),
        gradient_checkpointing: bool = False,
        config_overrides: dict[str, Any] | None = None,
        encode_batch_size: int | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if encode_batch_size is not None:
            check_positive("model.encode_batch_size", encode_batch_size)
        self.encode_batch_size = encode_batch_size
        backend = default_backend(backend)
        if model is None:
            if model_name_or_path is None:
                raise ConfigError("pass model_name_or_path (a model directory or hub name) or a model.")
            model_class = self.family_model_class(model_name_or_path, config)
            model = model_class.from_pretrained(model_name_or_path, config=config, backend=backend,
                                                **(config_overrides or {}))
        elif config_overrides:
            model.config = model.config.replace(**config_overrides)
        self.model = model
        self.backend = "onnx" if isinstance(getattr(model, "backbone", None), OnnxBackbone) else backend
        # backend="auto": (the weights' state it was made for, the ONNX Runtime copy or None where it cannot be
        # made); a tuple, so the copy is no submodule (not in state_dict, parameters or device moves)
        self._cpu_runtime: tuple[tuple[tuple[int, int], ...], BoltirModel | None] | None = None
        self.loss_functions = loss_functions
        # told how many texts or pairs each forward pass finished: boltir's progress bar sets it while indexing,
        # searching or re-ranking, so a batch of thousands of pairs moves the bar as it goes, not at its end
        self.on_items_done: Callable[[int], None] | None = None
        self.loss = build_loss(loss_functions) if loss_functions is not None else None
        self.val_measures = list(val_measures)
        parse_measures(self.val_measures)  # an unknown measure fails before training starts
        if gradient_checkpointing:
            self.enable_gradient_checkpointing()
        self.eval()  # inference until Lightning's fit switches to training (HF loads backbones in eval mode too)

    @classmethod
    def family_model_class(cls, name_or_path: str | os.PathLike[str], config: BoltirConfig | dict | None) -> type[BoltirModel]:
        """The model class of the family that ``config``, or else the saved directory, names (``MODEL_FAMILIES``)
        when it is a kind of the module's ``model_class``; ``model_class`` itself otherwise (a plain HF directory)."""
        family = config.family if isinstance(config, BoltirConfig) else read_family(resolve_model_dir(name_or_path))
        found = MODEL_FAMILIES.get(family) if family else None
        return found if found is not None and issubclass(found, cls.model_class) else cls.model_class

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        return {**state, "_cpu_runtime": None}  # ONNX Runtime sessions do not pickle; a copy makes its own

    @property
    def config(self) -> BoltirConfig:
        return self.model.config

    def runtime_model(self) -> BoltirModel:
        """The model that inference runs: with ``backend="auto"`` on a CPU, outside training and without
        gradients, ``model`` with its backbones on ONNX Runtime (see :mod:`boltir.models.onnx_cache`); ``model``
        itself otherwise, and where the model cannot be exported (that is logged at debug level)."""
        if (self.backend != "auto" or self.training or torch.is_grad_enabled() or self.device.type != "cpu"
                or (self._trainer is not None and self._trainer.state.fn == TrainerFn.FITTING)):
            return self.model
        # a weight changed in place (optimizer step, load_state_dict) bumps its version; a new layer has a new id
        state = tuple((id(p), p._version) for p in self.model.parameters())
        if self._cpu_runtime is None or self._cpu_runtime[0] != state:
            try:
                runtime = onnx_runtime_model(self.model)
            except Exception as exc:  # noqa: BLE001 - any export failure leaves inference on PyTorch, which is right
                log.debug("running %s on PyTorch: no ONNX Runtime copy (%s)", type(self.model).__name__, exc)
                runtime = None
            self._cpu_runtime = (state, runtime)
        return self._cpu_runtime[1] or self.model

    def save_pretrained(self, directory: str | os.PathLike[str]) -> None:
        """Save model, tokenizer, boltir config and model card as one HF directory (atomically); after ``fit`` the
        card says how the model was trained and what validation measured."""
        self.model.save_pretrained(directory, training=self.training_summary())

    def push_to_hub(self, repo_id: str, private: bool | None = None, token: str | None = None,
                    commit_message: str = "Upload boltir model") -> str:
        """Save this model (with its card) and upload it to the Hugging Face Hub as ``repo_id``; returns the commit URL."""
        with tempfile.TemporaryDirectory(prefix="boltir-save-") as tmp:
            directory = Path(tmp) / repo_id.split("/")[-1]
            self.save_pretrained(directory)
            return push_directory(directory, repo_id, private=private, token=token, commit_message=commit_message)

    def training_summary(self) -> TrainingSummary | None:
        """How this module was fitted (steps, losses, data, validation measures), or None before any training step."""
        trainer = self._trainer
        if trainer is None or trainer.global_step == 0:
            return None
        datamodule = getattr(trainer, "datamodule", None)
        metrics = {k.split("/")[-1]: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        return TrainingSummary(
            steps=int(trainer.global_step), epochs=int(trainer.current_epoch) + 1,
            losses=[loss_label(config) for config in self.loss_configs()],
            datasets=dataset_names(getattr(datamodule, "train_dataset", None)),
            metrics=metrics, validation_datasets=dataset_names(getattr(datamodule, "val_datasets", None)) if metrics else [],
            precision=str(trainer.precision),
        )

    def loss_configs(self) -> list[LossConfig]:
        """The loss settings this module trains with (as given), for the model card."""
        return [self.loss_functions] if self.loss_functions is not None else []

    def batch_size_on(self, device: torch.device) -> int:
        """Texts or pairs per forward pass on ``device``: ``encode_batch_size``, or the device's default."""
        return self.encode_batch_size or default_batch_size(device)

    @property
    def forward_batch_size(self) -> int:
        """Texts or pairs per forward pass on the module's device."""
        return self.batch_size_on(self.device)

    def packs_sequences(self) -> bool:
        """Whether batches run packed, end to end without padding (see :func:`boltir.modules.device.packs_sequences`)."""
        return packs_sequences(self.model, self.device, self.training)

    def batch_transform(self) -> Callable[[Any], Any] | None:
        """What the DataLoader's workers apply to each batch (tokenisation); None keeps batches as text."""
        return None

    def report_progress(self, count: int) -> None:
        """``count`` more texts (or query-document pairs) are encoded (or scored): tell :attr:`on_items_done`."""
        if self.on_items_done is not None:
            self.on_items_done(count)

    # -- Lightning's predict loop drives index / search / re-rank (see boltir.callbacks) -----------
    def predict_step(self, batch: Any, batch_idx: int = 0, dataloader_idx: int = 0) -> EncodeOutput | ScoreOutput:
        if isinstance(batch, DocBatch):
            return EncodeOutput(batch.doc_ids, self.embed_docs(batch.texts, encoding=batch.encoding), "doc")
        if isinstance(batch, QueryBatch):
            return EncodeOutput(batch.query_ids, self.embed_queries(batch.texts, encoding=batch.encoding), "query")
        if isinstance(batch, RankBatch):
            return ScoreOutput(batch.query_ids, batch.doc_ids, self.rank_scores(batch.queries, batch.docs))
        raise TypeError(f"{type(self).__name__} cannot predict on a {type(batch).__name__}")

    def embed_docs(self, texts: list[str], encoding: Encoding | None = None) -> Tensor:
        """Document vectors; ``encoding`` holds the texts' tokens when the DataLoader's workers made them."""
        raise ConfigError(f"{type(self).__name__} does not encode documents on their own (it is not a bi-encoder).")

    def embed_queries(self, texts: list[str], encoding: Encoding | None = None) -> Tensor:
        raise ConfigError(f"{type(self).__name__} does not encode queries on their own (it is not a bi-encoder).")

    def rank_scores(self, queries: list[str], docs: list[list[str]]) -> list[Tensor]:
        """One score per candidate document of each query; families implement it."""
        raise NotImplementedError

    # -- training: Lightning's fit loop ------------------------------------------------------------
    def training_step(self, batch: TrainBatch, batch_idx: int = 0) -> Tensor:
        """Sum of the batch's loss terms; each term is logged as ``train/<name>``, the sum as ``train/loss``."""
        if not isinstance(batch, TrainBatch):
            raise ConfigError(f"fit needs training lists (TupleDataset, RunTupleDataset) in data.train_dataset, got a {type(batch).__name__}.")
        losses = self.training_losses(batch)
        total = torch.stack(list(losses.values())).sum()
        size = len(batch.queries)
        for name, value in losses.items():
            self.log(f"train/{name}", value.detach(), batch_size=size)
        self.log("train/loss", total.detach(), prog_bar=True, batch_size=size)
        return total

    def training_losses(self, batch: TrainBatch) -> dict[str, Tensor]:
        """The named loss terms of a batch; families with more terms (in-batch negatives, regularisers) extend it."""
        scores = torch.stack(self.rank_scores(batch.queries, batch.docs))
        return {"ranking": self.ranking_loss(scores, batch.targets)}

    def ranking_loss(self, scores: Tensor, targets: Tensor) -> Tensor:
        """``loss_functions`` of ``[Q, N]`` scores against targets, computed in float32 whatever the precision."""
        if self.loss is None:
            raise ConfigError(f"{type(self).__name__} has no loss: set model.init_args.loss_functions (e.g. infonce).")
        return self.loss(scores.float(), targets.to(device=scores.device, dtype=torch.float32))

    def enable_gradient_checkpointing(self) -> None:
        """Turn on activation checkpointing in every HF backbone of the model."""
        for module in self.model.modules():
            if isinstance(module, PreTrainedModel) and module.supports_gradient_checkpointing:
                module.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    def setup(self, stage: str) -> None:
        """Hand :meth:`batch_transform` to boltir's DataModule (batches arrive tokenised); train in float32."""
        if stage == "fit" and self.backend == "onnx":
            raise ConfigError("a model on backend='onnx' runs inference only: fine-tune the PyTorch model, then export it.")
        datamodule = getattr(self.trainer, "datamodule", None)
        if isinstance(datamodule, DataModule):
            datamodule.batch_transform = self.batch_transform()
        if stage != "fit":
            return
        self.train()  # modules start in eval mode (as HF models load); Lightning keeps each submodule's mode
        # Weights saved in fp16/bf16 are trained in float32 (mixed precision keeps float32 master weights).
        if any(p.dtype in (torch.float16, torch.bfloat16) for p in self.parameters()):
            log.info("casting the %s weights to float32 for training", next(self.parameters()).dtype)
            self.float()

    def configure_optimizers(self) -> Any:
        """AdamW at lr 2e-5; the config's ``optimizer:`` / ``lr_scheduler:`` sections replace it."""
        return torch.optim.AdamW(self.parameters(), lr=2e-5)

    def on_train_start(self) -> None:
        # Schedules that decay to the end of training learn its length here (see LinearWarmupDecay).
        for scheduler_config in self.trainer.lr_scheduler_configs:
            fit_to = getattr(scheduler_config.scheduler, "fit_to", None)
            if callable(fit_to):
                fit_to(int(self.trainer.estimated_stepping_batches))

    # -- validation during fit: re-rank data.val_datasets (RankingValidation evaluates the runs) ----
    def validation_step(self, batch: Any, batch_idx: int = 0, dataloader_idx: int = 0) -> ScoreOutput:
        if not isinstance(batch, RankBatch):
            raise ConfigError("validation re-ranks candidates: put RunDataset instances in data.val_datasets.")
        return self.predict_step(batch, batch_idx, dataloader_idx)  # type: ignore[return-value]

    # -- convenience for users outside a Trainer ---------------------------------------------------
    @torch.inference_mode()
    def score(self, query: str | list[str], docs: list[str] | list[list[str]]) -> ScoreOutput:
        """Score documents for one query (``docs`` a list of texts) or for several (a list of lists)."""
        queries = [query] if isinstance(query, str) else list(query)
        doc_lists = [docs] if isinstance(query, str) else docs
        if len(queries) != len(doc_lists):
            raise ConfigError(f"got {len(queries)} queries but {len(doc_lists)} document lists.")
        for q, d in zip(queries, doc_lists):
            if not q.strip():
                raise ConfigError("a query is empty; pass non-empty query text.")
            if not d:
                raise ConfigError(f"the candidate list of query '{q[:40]}' is empty; pass at least one document.")
        was_training = self.training
        self.eval()
        try:
            scores = self.rank_scores(queries, doc_lists)
        finally:
            self.train(was_training)
        ids = [str(i) for i in range(len(queries))]
        doc_ids = [[str(j) for j in range(len(d))] for d in doc_lists]
        return SingleScoreOutput(scores[0]) if isinstance(query, str) else ScoreOutput(ids, doc_ids, scores)


def loss_label(config: LossConfig) -> str:
    """A loss setting in one line: ``infonce``, ``kl_divergence(temperature=2)``, ``a + 0.5*b``."""
    if isinstance(config, str):
        return config
    if isinstance(config, dict):
        options = {k: v for k, v in config.items() if k not in ("name", "weight")}
        label = str(config.get("name", "?")) + (f"({', '.join(f'{k}={v}' for k, v in options.items())})" if options else "")
        return f"{config['weight']}*{label}" if "weight" in config else label
    return " + ".join(loss_label(part) for part in config)


def dataset_names(datasets: Any) -> list[str]:
    """Short names of training or validation datasets for the model card: a folder's or file's name, an id."""
    if datasets is None:
        return []
    if isinstance(datasets, (list, tuple)):
        return [name for dataset in datasets for name in dataset_names(dataset)]
    if hasattr(datasets, "datasets"):  # MixedTupleDataset
        return dataset_names(datasets.datasets)
    queries = getattr(datasets, "queries", None)
    source = getattr(queries, "source", None) or getattr(datasets, "source", None)
    if source is None:
        return [type(datasets).__name__]
    path = Path(str(source))
    return [path.stem if path.exists() else str(source)]


__all__ = ["BoltirModule", "EncodeOutput", "LossConfig", "ScoreOutput", "SingleScoreOutput"]

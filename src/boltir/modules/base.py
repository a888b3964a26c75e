"""The LightningModule base: a boltir model plus what Lightning needs to index, search, re-rank and train it."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

import lightning.pytorch as pl
import torch
from lightning.fabric.utilities.seed import _collect_rng_states, _set_rng_states
from torch import Tensor
from transformers import PreTrainedModel

from ..data.batches import DocBatch, Encoding, QueryBatch, RankBatch, TrainBatch, pin_tensor
from ..data.datamodule import DataModule
from ..data.run import Run
from ..errors import ConfigError
from ..eval import evaluate, parse_measures
from ..loss import build_loss
from ..models import BoltirConfig, BoltirModel
from ..models.layers import TokenVectors
from ..models.layers.attention import varlen_runs
from ..models.layers.segments import SegmentedVectors

log = logging.getLogger(__name__)

# What ``loss_functions`` accepts in YAML: a name, {name: ..., option: ...}, or a list of those with weights.
LossConfig = str | dict[str, Any] | list[str | dict[str, Any]]


@dataclass
class EncodeOutput:
    """Vectors of a batch of documents or queries, with their ids.

    ``embeddings`` is ``[batch, dim]`` for dense models, ``[batch, vocab]`` mostly-zero term weights for sparse
    ones, :class:`~boltir.models.layers.TokenVectors` (padded ``[batch, tokens, dim]`` + mask) for multi-vector
    ones, and the texts themselves for lexical engines such as BM25; the model's ``representation`` says which,
    and index engines check it.
    """

    ids: list[str]
    embeddings: Tensor | TokenVectors | list[str]
    kind: str  # "query" or "doc"


@dataclass
class ScoreOutput:
    """Scores of documents for queries: ``scores[i]`` holds one float per document of query ``i``."""

    query_ids: list[str]
    doc_ids: list[list[str]]
    scores: list[Tensor]


class BoltirModule(pl.LightningModule):
    """Holds a model and its tokenizer; batching, padding, truncation and device placement happen here.

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
        val_measures: ir-measures names logged as ``val/<measure>`` after re-ranking ``data.val_datasets``.
        gradient_checkpointing: recompute activations in the backward pass (less memory, ~30% slower).
        config_overrides: options to change in the saved (or given) config, e.g. ``{doc_length: 128}``; in YAML
            a dict under ``config:`` would become a whole config with defaults for every other option.
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
    ) -> None:
        super().__init__()
        if model is None:
            if model_name_or_path is None:
                raise ConfigError("pass model_name_or_path (a model directory or hub name) or a model.")
            model = self.model_class.from_pretrained(model_name_or_path, config=config, **(config_overrides or {}))
        elif config_overrides:
            model.config = model.config.replace(**config_overrides)
        self.model = model
        self.loss = build_loss(loss_functions) if loss_functions is not None else None
        self.val_measures = list(val_measures)
        parse_measures(self.val_measures)  # an unknown measure fails before training starts
        if gradient_checkpointing:
            self.enable_gradient_checkpointing()
        self._val_runs: dict[int, Run] = {}
        self.eval()  # inference until Lightning's fit switches to training (HF loads backbones in eval mode too)

    @property
    def config(self) -> BoltirConfig:
        return self.model.config

    def save_pretrained(self, directory: str | os.PathLike[str]) -> None:
        """Save model, tokenizer and boltir config as one HF directory (atomically)."""
        self.model.save_pretrained(directory)

    def _to_device(self, encoding: Encoding) -> Encoding:
        """Move a tokenised batch to the model's device; through page-locked memory on a GPU, so the copy does
        not wait for the GPU's queued work and the CPU can prepare the next batch meanwhile."""
        device = self.device
        if device.type != "cuda":
            return {k: v.to(device) for k, v in encoding.items()}
        return {k: pin_tensor(v).to(device, non_blocking=True) for k, v in encoding.items()}

    def _in_input_order(self, values: Any, order: Sequence[int] | Tensor) -> Any:
        """``values`` computed in ``order`` (row ``i`` for input ``order[i]``), put back in input order; on a GPU the
        permutation goes through page-locked memory, so its copy does not wait for the GPU's queued work."""
        inverse = torch.argsort(torch.as_tensor(order))
        if self.device.type == "cuda":
            inverse = inverse.pin_memory().to(self.device, non_blocking=True)
        return values[inverse]

    def packs_sequences(self) -> bool:
        """Whether batches run packed, end to end without padding: where PyTorch's variable-length flash kernel runs
        them (a recent GPU, fp16/bf16 weights or autocast, torch 2.10+), in inference (the kernel has no attention
        dropout), for a model that can (``model.packable``)."""
        if not self.model.packable or self.training:
            return False
        device = self.device
        autocast = device.type == "cuda" and torch.is_autocast_enabled("cuda")
        dtype = torch.get_autocast_dtype("cuda") if autocast else next(self.model.parameters()).dtype
        return varlen_runs(device, dtype)

    def _overlapped(self, batches: Sequence[Any], prepare: Callable[[Any], Any], compute: Callable[[Any], Tensor]) -> list[Tensor]:
        """:func:`overlapped`, with the helper thread on a GPU only: on a CPU the matrix products already use
        every core, so preparing beside them would only compete."""
        return overlapped(batches, prepare, compute, helper=self.device.type == "cuda")

    def batch_transform(self) -> Callable[[Any], Any] | None:
        """What the DataLoader's workers apply to each batch (tokenisation); None keeps batches as text."""
        return None

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

    def gather(self, tensor: Tensor | SegmentedVectors) -> Tensor | SegmentedVectors:
        """``tensor`` of every device concatenated along dim 0 (DDP); gradients flow through this device's part."""
        trainer = self._trainer
        if trainer is None or trainer.world_size == 1:
            return tensor
        if isinstance(tensor, SegmentedVectors):  # both parts have the same shape on every device (max_segments wide)
            return SegmentedVectors(self.gather(tensor.vectors), self.gather(tensor.mask.to(torch.uint8)).bool())
        parts = list(self.all_gather(tensor.detach()).unbind(0))
        parts[self.global_rank] = tensor
        return torch.cat(parts)

    def enable_gradient_checkpointing(self) -> None:
        """Turn on activation checkpointing in every HF backbone of the model."""
        for module in self.model.modules():
            if isinstance(module, PreTrainedModel) and module.supports_gradient_checkpointing:
                module.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    def setup(self, stage: str) -> None:
        """Hand :meth:`batch_transform` to boltir's DataModule (batches arrive tokenised); train in float32."""
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

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Lightning does not save random states; with them a resumed run draws the same dropout masks.
        states = _collect_rng_states()
        kind, keys, *rest = states["numpy"]  # as a tensor, so checkpoints still load with weights_only=True
        states["numpy"] = (kind, torch.from_numpy(keys.astype("int64")), *rest)
        checkpoint["boltir_rng_states"] = states

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        states = checkpoint.get("boltir_rng_states")
        if states:
            kind, keys, *rest = states["numpy"]
            _set_rng_states({**states, "numpy": (kind, keys.numpy().astype("uint32"), *rest)})

    # -- validation during fit: re-rank data.val_datasets and evaluate -----------------------------
    def on_validation_epoch_start(self) -> None:
        self._val_runs = {}

    def validation_step(self, batch: Any, batch_idx: int = 0, dataloader_idx: int = 0) -> None:
        if not isinstance(batch, RankBatch):
            raise ConfigError("validation re-ranks candidates: put RunDataset instances in data.val_datasets.")
        output = self.predict_step(batch, batch_idx, dataloader_idx)
        run = self._val_runs.setdefault(dataloader_idx, Run(name="validation"))
        for query_id, doc_ids, scores in zip(output.query_ids, output.doc_ids, output.scores):
            run.add(query_id, doc_ids, scores.float().cpu().tolist())

    def on_validation_epoch_end(self) -> None:
        from ..callbacks.run_writer import dataset_name  # callbacks import this module

        loaders = self.trainer.val_dataloaders
        loaders = loaders if isinstance(loaders, (list, tuple)) else [loaders]
        for idx, run in sorted(self._gathered_val_runs().items()):
            dataset = loaders[idx].dataset
            qrels = getattr(dataset, "qrels", None)
            if not qrels:
                continue
            prefix = "val" if len(loaders) == 1 else f"val/{dataset_name(dataset, idx)}"
            for measure, value in evaluate(run, qrels, self.val_measures).items():
                self.log(f"{prefix}/{measure}", value, prog_bar=True)

    def _gathered_val_runs(self) -> dict[int, Run]:
        """Under DDP each device re-ranked a share of the queries: collect them all on every device."""
        if self.trainer.world_size == 1:
            return self._val_runs
        shares: list[Any] = [None] * self.trainer.world_size
        torch.distributed.all_gather_object(shares, {i: r.rankings for i, r in self._val_runs.items()})
        runs: dict[int, Run] = {}
        for share in shares:
            for idx, rankings in share.items():
                for query_id, ranking in rankings.items():
                    runs.setdefault(idx, Run(name="validation")).add(query_id, ranking.keys(), ranking.values())
        return runs

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


def overlapped(batches: Sequence[Any], prepare: Callable[[Any], Any], compute: Callable[[Any], Tensor], helper: bool) -> list[Tensor]:
    """``compute(prepare(batch))`` for every batch, in order. With ``helper``, one thread prepares (tokenises,
    page-locks) the next batch while this one is computed: Rust tokenizers release the GIL, so the host prepares
    while the GPU runs the queued kernels.

    One thread, not several: tokenising switches the shared Rust tokenizer's truncation between calls
    (transformers does on each call), so two threads tokenising at once could cut each other's texts; on an H200,
    2 or 4 threads were no faster anyway (benchmarks/RESULTS.md, round 3).
    """
    if not helper or len(batches) < 2:
        return [compute(prepare(batch)) for batch in batches]
    chunks = []
    with ThreadPoolExecutor(max_workers=1) as thread:
        upcoming = thread.submit(prepare, batches[0])
        for index in range(len(batches)):
            prepared = upcoming.result()
            if index + 1 < len(batches):
                upcoming = thread.submit(prepare, batches[index + 1])
            chunks.append(compute(prepared))
    return chunks


@dataclass
class SingleScoreOutput:
    """Scores of one query's documents, in the order they were passed."""

    scores: Tensor

    def ranking(self) -> list[int]:
        """Document positions, best first."""
        return torch.argsort(self.scores, descending=True, stable=True).tolist()


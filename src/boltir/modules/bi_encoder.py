"""The bi-encoder LightningModule: encode queries and documents apart, compare by the config's similarity."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from ..data.batches import DocBatch, Encoding, QueryBatch, TokenChunks, TrainBatch, pin_encoding
from ..errors import ConfigError, check_positive
from ..loss import Regulariser, build_loss, in_batch_scores
from ..models import BiEncoderConfig, BiEncoderModel, ColBERTModel, SpladeModel
from ..models.layers.packing import PackedTokens
from ..types import SegmentedVectors, TokenVectors, cat_batches
from .base import BoltirModule, LossConfig, loss_label
from .device import in_input_order, overlapped, runs_packed, to_device, weights_dtype
from .late_cache import LateCache, stable_keys


# Lightning precisions that cast the weights (or autocast) to a half type: a module is packed in it
PRECISION_DTYPES = {"bf16-true": torch.bfloat16, "16-true": torch.float16, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def length_chunks(texts: list[str], size: int) -> tuple[list[int], list[list[str]]]:
    """Positions of ``texts``, longest first, and the texts in that order cut into chunks of ``size``."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
    return order, [[texts[i] for i in order[start : start + size]] for start in range(0, len(order), size)]


class TokenizeBatch:
    """Tokenises query, document and training batches with the model's own tokenize methods (in DataLoader
    workers); a training batch's texts in length-sorted chunks of ``chunk_size``, as the step would cut them.

    With ``pack``, query and document batches are also packed there, end to end (:class:`PackedTokens`): packing
    reads the lengths, and packing on the GPU would make the host wait for the GPU's queued work every batch.
    """

    def __init__(self, model: BiEncoderModel, chunk_size: int, pack: bool = False) -> None:
        self.tokenize_queries, self.tokenize_docs = model.tokenize_queries, model.tokenize_docs
        self.pack = model.pack if pack else None
        self.chunk_size = chunk_size

    def __call__(self, batch: Any) -> Any:
        if isinstance(batch, DocBatch) and batch.encoding is None:
            batch.encoding = self._packed(self.tokenize_docs(batch.texts))
        elif isinstance(batch, QueryBatch) and batch.encoding is None:
            batch.encoding = self._packed(self.tokenize_queries(batch.texts))
        elif isinstance(batch, TrainBatch) and batch.doc_tokens is None:
            batch.query_tokens = self._chunks(self.tokenize_queries, batch.queries)
            batch.doc_tokens = self._chunks(self.tokenize_docs, [d for docs in batch.docs for d in docs])
        return batch

    def _packed(self, encoding: Encoding) -> Encoding | PackedTokens:
        return self.pack(encoding) if self.pack is not None and "segment_mask" not in encoding else encoding

    def _chunks(self, tokenize: Callable[[list[str]], Encoding], texts: list[str]) -> TokenChunks:
        order, chunks = length_chunks(texts, self.chunk_size)
        return TokenChunks(order, [tokenize(chunk) for chunk in chunks])


class BiEncoderModule(BoltirModule):
    """A bi-encoder ready to score, index, search and train.

    Example:
        >>> module = BiEncoderModule("sentence-transformers/all-MiniLM-L6-v2")
        >>> module.score("capital of Germany?", ["Berlin is ...", "Paris is ..."]).scores

    Training adds, to the base module's options:
        in_batch_loss: a loss (as ``loss_functions``) over every query against every document of the batch,
            gathered across devices under DDP; the target is each query's own positive (its list's first
            document), e.g. ``{name: infonce, temperature: 0.05}``. None turns in-batch negatives off.
        query_regulariser / doc_regulariser: a sparsity penalty on the query / document vectors (SPLADE),
            weighted by ``weight_at(global_step)``.
        late_cache_size: keep the vectors of this many documents from earlier batches (SeDR's late-cache
            negatives) and add them to ``in_batch_loss`` as extra negatives; 0 turns it off. A cached document
            whose text is a positive of the current batch (first of its list, or target > 0) is never used. The
            cache starts empty each epoch (and after a resume).
    """

    model_class: ClassVar[type[BiEncoderModel]] = BiEncoderModel
    model: BiEncoderModel

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str] | None = None,
        config: BiEncoderConfig | dict | None = None,
        model: BiEncoderModel | None = None,
        loss_functions: LossConfig | None = "infonce",
        in_batch_loss: LossConfig | None = None,
        query_regulariser: Regulariser | None = None,
        doc_regulariser: Regulariser | None = None,
        val_measures: Sequence[str] = ("nDCG@10",),
        gradient_checkpointing: bool = False,
        config_overrides: dict[str, Any] | None = None,
        late_cache_size: int = 0,
        encode_batch_size: int | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__(
            model_name_or_path, config, model, loss_functions, val_measures, gradient_checkpointing, config_overrides,
            encode_batch_size, backend,
        )
        self.in_batch_loss_config = in_batch_loss
        self.in_batch_loss = build_loss(in_batch_loss) if in_batch_loss is not None else None
        if self.loss is None and self.in_batch_loss is None:
            raise ConfigError("BiEncoderModule needs loss_functions or in_batch_loss (or both) to train.")
        self.query_regulariser = query_regulariser
        self.doc_regulariser = doc_regulariser
        self.late_cache = LateCache(late_cache_size) if late_cache_size else None
        if self.late_cache is not None and self.in_batch_loss is None:
            raise ConfigError("late_cache_size adds negatives to the in-batch loss: set in_batch_loss too.")

    def gather(self, tensor: Tensor | TokenVectors) -> Tensor | TokenVectors:
        """``tensor`` of every device concatenated along dim 0 (DDP); gradients flow through this device's part.
        Token and segment vectors are padded to the longest batch of any device first."""
        trainer = self._trainer
        if trainer is None or trainer.world_size == 1:
            return tensor
        if isinstance(tensor, TokenVectors):
            length = int(self.all_gather(torch.tensor(tensor.vectors.shape[1], device=self.device)).max())
            padded = type(tensor).cat([tensor], length=length)
            mask = self.all_gather(padded.mask.to(torch.uint8)).flatten(0, 1).bool()
            return type(tensor)(self.gather(padded.vectors), mask)
        parts = list(self.all_gather(tensor.detach()).unbind(0))
        parts[self.global_rank] = tensor
        return torch.cat(parts)

    def loss_configs(self) -> list[LossConfig]:
        if self.in_batch_loss_config is None:
            return super().loss_configs()
        return [*super().loss_configs(), f"in-batch {loss_label(self.in_batch_loss_config)}"]

    def training_losses(self, batch: TrainBatch) -> dict[str, Tensor]:
        """List loss, in-batch loss and regularisers, from one encoding of the batch's queries and documents."""
        num_queries, list_size = batch.targets.shape
        queries = self.embed_queries(batch.queries, encoding=batch.query_tokens)
        docs = self.embed_docs([d for ds in batch.docs for d in ds], encoding=batch.doc_tokens)
        losses: dict[str, Tensor] = {}
        if self.loss is not None:
            scores = torch.stack(
                [self.model.score(queries[i : i + 1], docs[i * list_size : (i + 1) * list_size])[0] for i in range(num_queries)]
            )
            losses["ranking"] = self.ranking_loss(scores, batch.targets)
        if self.in_batch_loss is not None:
            all_queries, all_docs = self.gather(queries), self.gather(docs)
            scores, targets = in_batch_scores(all_queries, all_docs, list_size, self.model.score)
            if self.late_cache is not None:
                scores, targets = self._with_late_cache(batch, all_queries, all_docs, scores, targets)
            # Each device back-propagates through its own vectors only and DDP averages the gradients over
            # devices: scaling by the world size gives the gradient of the loss over the gathered batch.
            world_size = self.trainer.world_size if self._trainer is not None else 1
            losses["in_batch"] = self.in_batch_loss(scores.float(), targets.float()) * world_size
        doc_vectors = docs.vectors[docs.mask] if isinstance(docs, SegmentedVectors) else docs
        for name, regulariser, vectors in (
            ("query_regulariser", self.query_regulariser, queries),
            ("doc_regulariser", self.doc_regulariser, doc_vectors),
        ):
            if regulariser is not None:
                losses[name] = regulariser.weight_at(self.global_step) * regulariser(vectors.float())
        return losses

    def _with_late_cache(
        self, batch: TrainBatch, queries: Tensor, docs: Tensor | SegmentedVectors, scores: Tensor, targets: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Append the scores of cached documents (target 0), then cache this batch's documents (gathered, detached)."""
        assert self.late_cache is not None
        self.late_cache.sync(self.current_epoch if self._trainer is not None else 0, self.device)
        # documents are told apart by their text: tuple files without ids give one text different ids per line
        keys = stable_keys([d for texts in batch.docs for d in texts]).to(self.device)
        positive = batch.targets.to(self.device) > 0
        positive[:, 0] = True  # the in-batch loss's positive, whatever its target
        keys, positive = self.gather(keys), self.gather(positive.flatten().to(torch.uint8)).bool()
        negatives = self.late_cache.negatives(exclude=keys[positive])
        if negatives is not None:
            cached = self.model.score(queries, negatives.to(queries.device))
            scores = torch.cat([scores, cached.to(scores.dtype)], 1)
            targets = torch.cat([targets, targets.new_zeros(cached.shape)], 1)
        self.late_cache.enqueue(keys, docs)
        return scores, targets

    def batch_transform(self) -> Callable[[Any], Any]:
        trainer = self._trainer
        predicting = trainer is not None and trainer.predicting  # index / search: the loop that packs
        return TokenizeBatch(self.model, self.batch_size_on(self._run_device()), pack=predicting and self._will_pack())

    def _will_pack(self) -> bool:
        """:meth:`packs_sequences` on the device and in the precision the Trainer will run this module with (its
        ``setup``, where this is asked, comes before the module is moved and cast)."""
        precision = str(getattr(self._trainer, "precision", ""))
        dtype = PRECISION_DTYPES.get(precision, weights_dtype(self.model))
        return runs_packed(self.model, self._run_device(), dtype)

    def _run_device(self) -> torch.device:
        """The device this module runs on: the Trainer's, before Lightning has moved the module there."""
        trainer = self._trainer
        return trainer.strategy.root_device if trainer is not None else self.device

    def _encode(
        self, texts: list[str], side: str, batch_size: int | None, encoding: Encoding | TokenChunks | None = None
    ) -> Tensor | TokenVectors:
        """Encode texts in length-sorted batches (little padding), returned in input order.

        ``encoding`` holds the texts' tokens when the DataLoader's workers made them: one batch (as indexing
        sorts whole streams by length), or a training batch's length-sorted chunks. Otherwise the texts are
        tokenised here; on a GPU the next batch is tokenised into page-locked memory while this one is encoded
        (see :func:`~boltir.modules.device.overlapped`), and vectors stay on the device until the end. Where :meth:`packs_sequences`, each
        batch goes end to end without padding.
        """
        if batch_size is not None:
            check_positive("batch_size", batch_size)
        model = self.runtime_model()
        encode = model.encode_queries if side == "query" else model.encode_docs
        pack, on_gpu = self.packs_sequences(), self.device.type == "cuda"

        def prepare(tokens: Encoding | PackedTokens) -> Encoding | PackedTokens:
            """Packed where the module packs; page-locked on a GPU."""
            if isinstance(tokens, PackedTokens):  # packed by the DataLoader's workers
                tokens = tokens if pack else tokens.padded()
                return tokens.pin_memory() if on_gpu and isinstance(tokens, PackedTokens) else tokens
            if pack:  # on the GPU already where Lightning moved the DataLoader's batch there: packed there
                packed = self.model.pack(tokens)
                return packed.pin_memory() if on_gpu else packed
            return pin_encoding(tokens) if on_gpu else tokens  # type: ignore[return-value]

        def compute(tokens: Encoding | PackedTokens) -> Tensor | TokenVectors:
            if isinstance(tokens, PackedTokens):
                vectors = encode(tokens.to(self.device))  # non-blocking: it holds page-locked memory on a GPU
            else:
                vectors = encode(to_device(tokens, self.device))
            self.report_progress(len(vectors))
            return vectors

        if encoding is not None and not isinstance(encoding, TokenChunks):
            return compute(prepare(encoding))
        if encoding is not None:
            order = encoding.order
            chunks = [compute(chunk) for chunk in encoding.chunks]
        else:
            tokenize = self.model.tokenize_queries if side == "query" else self.model.tokenize_docs
            order, batches = length_chunks(texts, batch_size or self.forward_batch_size)
            chunks = overlapped(batches, lambda batch: prepare(tokenize(batch)), compute, helper=on_gpu)
        if not chunks:
            return torch.empty(0, self.model.embedding_dim, device=self.device)
        return in_input_order(cat_batches(chunks), order, self.device)

    def embed_queries(
        self, texts: list[str], encoding: Encoding | TokenChunks | None = None, batch_size: int | None = None
    ) -> Tensor | TokenVectors:
        return self._encode(texts, "query", batch_size, encoding)

    def embed_docs(
        self, texts: list[str], encoding: Encoding | TokenChunks | None = None, batch_size: int | None = None
    ) -> Tensor | TokenVectors:
        return self._encode(texts, "doc", batch_size, encoding)

    @torch.inference_mode()
    def encode_queries(self, texts: list[str], batch_size: int | None = None) -> Tensor | TokenVectors:
        """Query vectors (no gradients): ``[len(texts), dim]``, or token vectors for multi-vector models."""
        return self.embed_queries(texts, batch_size=batch_size)

    @torch.inference_mode()
    def encode_docs(self, texts: list[str], batch_size: int | None = None) -> Tensor | TokenVectors:
        """Document vectors (no gradients): ``[len(texts), dim]``, token or segment vectors for multi-vector models."""
        return self.embed_docs(texts, batch_size=batch_size)

    def rank_scores(self, queries: list[str], docs: list[list[str]]) -> list[Tensor]:
        query_vectors = self.embed_queries(queries)
        flat = [d for ds in docs for d in ds]
        doc_vectors = self.embed_docs(flat)
        scores, start = [], 0
        for i, ds in enumerate(docs):
            scores.append(self.model.score(query_vectors[i : i + 1], doc_vectors[start : start + len(ds)])[0])
            start += len(ds)
        return scores


# The family a module loads is the one its config or saved directory names; these two only pick the family for a
# plain HF directory (no boltir_config.json), as ``BiEncoderModule(path, config=SpladeConfig())`` would.
class SpladeModule(BiEncoderModule):
    """A learned-sparse bi-encoder (SPLADE) ready to score, index (Seismic, exact inverted index), search and train.

    Example:
        >>> module = SpladeModule("boltir/splade-tiny")
        >>> module.score("what causes ocean tides", ["The moon's pull causes tides.", "Flour, eggs, sugar."]).scores
    """

    model_class: ClassVar[type[SpladeModel]] = SpladeModel
    model: SpladeModel


class ColBERTModule(BiEncoderModule):
    """A multi-vector bi-encoder (ColBERT, MaxSim) ready to score, index (PLAID, exact MaxSim), search, re-rank and
    train; MaxSim scores are sums over query tokens, so losses usually need no temperature."""

    model_class: ClassVar[type[ColBERTModel]] = ColBERTModel
    model: ColBERTModel

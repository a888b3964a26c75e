"""LightRetriever: a decoder LLM encodes documents; a query is an EmbeddingBag lookup (dense) or token counts (sparse).

Dense documents are the LLM's last-token (EOS) state; sparse documents its vocabulary projection, log(1 + ReLU),
max-pooled over tokens. An asymmetric dense query is the mean (or sum) of its tokens' vectors, where a token's
vector is the LLM's last state on ``[query_prefix] token EOS``: during training every distinct token of a batch
goes through the LLM (with gradients); afterwards the vectors of the whole vocabulary are cached once
(:meth:`LightRetrieverModel.build_token_cache`, or ``boltir cache-embeddings``) and :meth:`LightRetrieverModel.for_queries` serves queries from that cache alone.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes
from torch import Tensor, nn
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

from ..._io import atomic_file
from ...errors import ConfigError, IndexMismatchError, check_positive
from ..config import CONFIG_NAME
from ..layers import Pooling, pad_right_for_causal_attention, pairwise_similarity
from ..layers.lora import apply_lora, is_lora, save_merged
from ..model import BoltirModel, load_tokenizer
from ..resolve import resolve_model_dir
from .config import LightRetrieverConfig

CACHE_NAME = "query_embeddings.safetensors"
CACHE_FORMAT = 1
_WEIGHT_FILES = ("model*.safetensors", "pytorch_model*.bin", "boltir_heads.safetensors")


def vocab_sha256(tokenizer: PreTrainedTokenizerBase) -> str:
    """A hash of the token → id table: a cache or a sparse index is only valid for the same table."""
    table = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    return hashlib.sha256(json.dumps(table, ensure_ascii=False).encode()).hexdigest()


def weights_sha256(directory: Path) -> str:
    """A hash of a model directory's weight files (the model revision a cache was built from)."""
    digest = hashlib.sha256()
    files = sorted({p for pattern in _WEIGHT_FILES for p in directory.glob(pattern)})
    if not files:
        raise ConfigError(f"{directory} holds no weight files ({', '.join(_WEIGHT_FILES)}).")
    for path in files:
        with open(path, "rb") as handle:
            digest.update(path.name.encode() + hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


class LightRetrieverModel(BoltirModel[LightRetrieverConfig]):
    """An LLM document encoder with a lookup-only query encoder; ``backbone`` is None when serving queries only."""

    config_class: ClassVar[type[LightRetrieverConfig]] = LightRetrieverConfig
    backbone_class: ClassVar[Any] = AutoModelForCausalLM

    def __init__(
        self,
        backbone: PreTrainedModel | None,
        tokenizer: PreTrainedTokenizerBase,
        config: LightRetrieverConfig,
        backbone_config: Any = None,
        token_cache: Tensor | None = None,
    ) -> None:
        super().__init__(backbone, tokenizer, config)  # type: ignore[arg-type]
        if backbone is not None and config.lora_r and not is_lora(backbone):
            self.backbone = apply_lora(backbone, config.lora_r, config.lora_alpha, config.lora_target_modules, config.lora_dropout)
        self.backbone_config = backbone_config if backbone_config is not None else backbone.config  # type: ignore[union-attr]
        if tokenizer.eos_token_id is None:
            raise ConfigError("LightRetriever pools the EOS token, but the tokenizer defines no eos_token.")
        pad_right_for_causal_attention(tokenizer)
        self.last_token = Pooling("last")
        self.token_cache = (
            nn.EmbeddingBag.from_pretrained(token_cache, freeze=True, mode=config.token_pooling) if token_cache is not None else None
        )

    # -- what the vectors are ----------------------------------------------------------------------
    @property
    def representation(self) -> str:
        return self.config.representation

    @property
    def embedding_dim(self) -> int:
        c = self.backbone_config
        return c.hidden_size if self.config.representation == "dense" else c.vocab_size

    def index_fingerprint(self) -> dict:
        """What decides the meaning of stored document vectors; a searching model must agree on all of it."""
        c = self.config
        return {
            "dim": self.embedding_dim,
            "similarity": c.score_similarity,
            "doc_encoder": "last-token" if c.representation == "dense" else "lm-head-max",
            "doc_prefix": c.doc_prefix,
            "backbone": self.backbone_config.model_type,
            "vocab_sha256": vocab_sha256(self.tokenizer),
        }

    @property
    def device(self) -> torch.device:
        tensor = next(iter([*self.parameters(), *self.buffers()]), None)
        return tensor.device if tensor is not None else torch.device("cpu")

    # -- tokenizing --------------------------------------------------------------------------------
    def _sequences(self, texts: list[str], prefix: str, max_length: int) -> dict[str, Tensor]:
        """``prefix + text`` truncated to leave room for EOS, then EOS: the last position is always EOS."""
        ids = self.tokenizer([prefix + t for t in texts], truncation=True, max_length=max_length - 1)["input_ids"]
        eos = self.tokenizer.eos_token_id
        return self.tokenizer.pad({"input_ids": [row + [eos] for row in ids]}, return_tensors="pt")

    def query_token_ids(self, queries: list[str]) -> dict[str, Tensor]:
        """The queries' own tokens (no prefix, no special tokens) flattened, with each query's offset."""
        rows = self.tokenizer(queries, add_special_tokens=False, truncation=True, max_length=self.config.query_length)["input_ids"]
        lengths = torch.tensor([0] + [len(r) for r in rows[:-1]])
        return {"token_ids": torch.tensor([t for r in rows for t in r], dtype=torch.long), "offsets": lengths.cumsum(0)}

    def tokenize_queries(self, queries: list[str]) -> dict[str, Tensor]:
        if self.config.symmetric:
            return self._sequences(queries, self.config.query_prefix, self.config.query_length)
        return self.query_token_ids(queries)

    def tokenize_docs(self, docs: list[str]) -> dict[str, Tensor]:
        return self._sequences(docs, self.config.doc_prefix, self.config.doc_length)

    def token_prompt(self) -> list[int]:
        """The input ids around one query token; -1 marks the token's place."""
        # rstrip: a query's tokens carry their own leading-space marker
        prefix = self.tokenizer(self.config.query_prefix.rstrip())["input_ids"]
        if prefix and prefix[-1] == self.tokenizer.eos_token_id:
            prefix = prefix[:-1]  # some tokenizers append EOS themselves
        return [*prefix, -1, self.tokenizer.eos_token_id]

    # -- encoding ----------------------------------------------------------------------------------
    def _llm(self) -> nn.Module:
        if self.backbone is None:
            raise ConfigError("this model was loaded for queries only (for_queries); load it fully to encode with the LLM.")
        return self.backbone

    def _encode_sequences(self, encoding: dict[str, Tensor]) -> Tensor:
        """Dense: the last (EOS) state. Sparse: max over tokens of log(1 + ReLU(lm_head(state)))."""
        llm = self._llm()
        mask = encoding["attention_mask"]
        states = llm.get_decoder()(input_ids=encoding["input_ids"], attention_mask=mask).last_hidden_state
        if self.config.representation == "dense":
            return self.last_token(states, mask)
        weights = torch.log1p(torch.relu(llm.get_output_embeddings()(states)))
        vectors = (weights * mask.unsqueeze(-1).to(weights.dtype)).amax(1)
        k = self.config.doc_top_k
        if k is not None and k < vectors.shape[-1]:
            top = vectors.topk(k, dim=-1)
            vectors = torch.zeros_like(vectors).scatter(-1, top.indices, top.values)
        return vectors

    def token_vectors(self, token_ids: Tensor) -> Tensor:
        """``[n, hidden]``: each token encoded alone by the LLM inside the query prompt (all inputs one length)."""
        prompt = torch.tensor(self.token_prompt(), device=token_ids.device)
        inputs = prompt.repeat(len(token_ids), 1)
        inputs[:, (prompt == -1).nonzero()[0, 0]] = token_ids
        states = self._llm().get_decoder()(input_ids=inputs, attention_mask=torch.ones_like(inputs)).last_hidden_state
        return states[:, -1]

    def encode_queries(self, encoding: dict[str, Tensor]) -> Tensor:
        """``[batch, dim]`` query vectors from a tokenised batch (see :meth:`tokenize_queries`)."""
        if self.config.symmetric:
            return self._encode_sequences(encoding)
        ids, offsets = encoding["token_ids"], encoding["offsets"]
        if self.config.representation == "sparse":
            bags = torch.repeat_interleave(torch.arange(len(offsets), device=ids.device), torch.diff(offsets, append=offsets.new_tensor([len(ids)])))
            counts = torch.zeros(len(offsets), self.embedding_dim, device=ids.device)
            return counts.index_put_((bags, ids), torch.ones_like(ids, dtype=counts.dtype), accumulate=True)
        if self.token_cache is not None:
            return self.token_cache(ids, offsets)
        unique, positions = torch.unique(ids, return_inverse=True)
        vectors = self.token_vectors(unique) if len(unique) else torch.zeros(0, self.embedding_dim, device=ids.device)
        return F.embedding_bag(positions, vectors, offsets, mode=self.config.token_pooling)

    def encode_docs(self, encoding: dict[str, Tensor]) -> Tensor:
        """``[batch, dim]`` document vectors from a tokenised batch."""
        return self._encode_sequences(encoding)

    def score(self, query_vectors: Tensor, doc_vectors: Tensor) -> Tensor:
        """``[Q, N]`` similarity of every query to every document."""
        return pairwise_similarity(self.config.score_similarity, query_vectors, doc_vectors)

    # -- the query token cache -----------------------------------------------------------------------
    def cache_fingerprint(self, directory: Path) -> dict[str, Any]:
        """What a query-token cache depends on: tokenizer, weights on disk, prompt and LLM shape."""
        return {
            "format": CACHE_FORMAT,
            "vocab_sha256": vocab_sha256(self.tokenizer),
            "weights_sha256": weights_sha256(directory),
            "prompt": self.token_prompt(),
            "model_type": self.backbone_config.model_type,
            "hidden_size": self.backbone_config.hidden_size,
        }

    def save_token_cache(self, vectors: Tensor, directory: Path, path: Path | None = None) -> Path:
        """Write ``[vocab, hidden]`` token vectors with the fingerprint of ``directory`` (the model they came from)."""
        if len(vectors) != len(self.tokenizer):
            raise ConfigError(f"a token cache needs one vector per token ({len(self.tokenizer)}), got {len(vectors)}.")
        path = Path(path) if path else directory / CACHE_NAME
        metadata = {"fingerprint": json.dumps(self.cache_fingerprint(directory)), "model": str(directory)}
        with atomic_file(path, "wb") as handle:
            handle.write(safetensors_bytes({"weight": vectors.detach().float().cpu().contiguous()}, metadata=metadata))
        return path

    @torch.inference_mode()
    def build_token_cache(self, batch_size: int = 1024, cache_path: str | os.PathLike[str] | None = None) -> Path:
        """Encode every vocabulary token alone (the query EmbeddingBag of an asymmetric dense model) on the model's
        device and save the vectors, fingerprinted, beside the saved model (or at ``cache_path``)."""
        check_positive("batch_size", batch_size)
        if self.config.symmetric or self.config.representation != "dense":
            raise ConfigError("cache-embeddings needs an asymmetric dense LightRetriever model (symmetric=False, representation='dense').")
        try:
            directory = resolve_model_dir(self.name_or_path)
        except Exception:
            raise ConfigError(
                "cache-embeddings fingerprints the model's weight files: save the model (save_pretrained) and load it "
                "from that directory first."
            ) from None
        vocabulary = torch.arange(len(self.tokenizer), device=self.device)
        batches = vocabulary.split(batch_size)
        training = self.training
        self.eval()  # no dropout
        try:
            parts = [self.token_vectors(ids).float().cpu() for ids in tqdm(batches, desc="query token cache", unit="batch")]
        finally:
            self.train(training)
        path = self.save_token_cache(torch.cat(parts), directory, Path(cache_path) if cache_path else None)
        print(f"cached {len(vocabulary)} query token vectors into {path}", flush=True)
        return path

    @classmethod
    def for_queries(
        cls,
        name_or_path: str | os.PathLike[str],
        cache_path: str | os.PathLike[str] | None = None,
        config: LightRetrieverConfig | dict | None = None,
    ) -> LightRetrieverModel:
        """The query encoder alone: tokenizer plus the cached EmbeddingBag (dense) or nothing (sparse); no LLM."""
        directory = resolve_model_dir(name_or_path)
        if isinstance(config, dict):
            config = cls.config_class.from_dict(config)
        if config is None:
            config = cls.config_class.load(directory) if (directory / CONFIG_NAME).is_file() else cls.config_class()
        if config.symmetric:
            raise ConfigError(f"{directory} encodes queries with the LLM (symmetric=True): load it fully, not for_queries.")
        model = cls(None, load_tokenizer(directory), config, backbone_config=AutoConfig.from_pretrained(directory))
        model.name_or_path = str(name_or_path)
        if config.representation == "dense":
            vectors = model.load_token_cache(directory, Path(cache_path) if cache_path else directory / CACHE_NAME)
            model.token_cache = nn.EmbeddingBag.from_pretrained(vectors, freeze=True, mode=config.token_pooling)
        return model

    def load_token_cache(self, directory: Path, path: Path) -> Tensor:
        """Read a cache, refusing one built from another tokenizer, model revision or prompt."""
        if not path.is_file():
            raise ConfigError(f"no query token cache at {path}: build it with `boltir cache-embeddings` first.")
        with safe_open(str(path), framework="pt") as handle:
            built = json.loads((handle.metadata() or {}).get("fingerprint", "{}"))
            vectors = handle.get_tensor("weight")
        current = self.cache_fingerprint(directory)
        diffs = [k for k in current if built.get(k) != current[k]]
        if diffs:
            what = {"vocab_sha256": "tokenizer", "weights_sha256": "model weights (revision)", "prompt": "query prompt"}
            named = ", ".join(what.get(k, k) for k in diffs)
            raise IndexMismatchError(
                f"the query token cache {path} was built from a different {named} than the model at {directory}: "
                "rebuild it with `boltir cache-embeddings` for this model."
            )
        return vectors

    # -- saving ------------------------------------------------------------------------------------
    def head_state_dict(self) -> dict[str, Tensor]:
        return {}  # the token cache is derived from the LLM and saved apart, with its fingerprint

    def save_into(self, directory: Path) -> None:
        save_merged(self._llm(), directory)  # LoRA: a plain model with the adapters merged in
        self.tokenizer.save_pretrained(directory)
        self.config.save(directory)


__all__ = ["CACHE_NAME", "LightRetrieverModel", "vocab_sha256", "weights_sha256"]

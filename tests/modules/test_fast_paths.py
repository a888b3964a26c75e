"""The fast inference paths give the same vectors and runs as the plain ones: tokenising in DataLoader workers,
buffered index additions, bf16 backbones pooled in float32."""

from __future__ import annotations

import torch

from boltir import BiEncoderModule, DataModule, DocDataset, FaissIndexConfig, QueryDataset, Trainer, open_searcher
from boltir.data import DocBatch, QueryBatch
from boltir.models.layers import Pooling

TEXTS = ["berlin is the capital of germany", "paris", "the moon causes the ocean tide in the sea"]


def _trainer() -> Trainer:
    return Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False)


def test_worker_tokenised_batches_encode_like_texts(tiny_bert_dir):
    module = BiEncoderModule(tiny_bert_dir).eval()
    batch = module.batch_transform()(DocBatch(["a", "b", "c"], TEXTS))
    queries = module.batch_transform()(QueryBatch(["q"], ["capital of germany"]))
    assert batch.encoding is not None and queries.encoding is not None
    with torch.inference_mode():
        from_tokens = module.predict_step(batch).embeddings
        from_texts = module.predict_step(DocBatch(["a", "b", "c"], TEXTS)).embeddings
        query = module.predict_step(queries).embeddings
    torch.testing.assert_close(from_tokens, from_texts, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(query, module.encode_queries(["capital of germany"]), atol=1e-5, rtol=1e-4)


def test_pinned_batch_keeps_its_tokens(tiny_bert_dir):
    module = BiEncoderModule(tiny_bert_dir)
    batch = module.batch_transform()(DocBatch(["a"], TEXTS[:1]))
    assert batch.encoding is not None
    if torch.cuda.is_available():  # pinning needs a CUDA runtime; elsewhere DataLoaders never pin
        pinned = batch.pin_memory()
        assert pinned.encoding is not None and all(v.is_pinned() for v in pinned.encoding.values())
    assert DocBatch(["a"], ["x"]).pin_memory().encoding is None


def test_index_with_workers_and_buffer_matches_plain_index(tiny_bert_dir, tiny_beir, tmp_path):
    module = BiEncoderModule(tiny_bert_dir)
    plain = DataModule(DocDataset(tiny_beir), inference_batch_size=2)
    _trainer().index(module, plain, tmp_path / "plain", FaissIndexConfig())
    assert plain.batch_transform is not None  # the module handed its tokeniser to the DataModule
    fast = DataModule(DocDataset(tiny_beir), inference_batch_size=4, num_workers=2)
    trainer = _trainer()
    from boltir.callbacks import IndexCallback

    trainer._predict_with(IndexCallback(tmp_path / "fast", FaissIndexConfig(), shard_size=3), module, fast)
    queries = module.encode_queries([q.text for q in QueryDataset(tiny_beir)])
    plain_scores, plain_ids = open_searcher(tmp_path / "plain").search_arrays(queries, 6)
    fast_scores, fast_ids = open_searcher(tmp_path / "fast").search_arrays(queries, 6)
    assert open_searcher(tmp_path / "fast").manifest["count"] == 6
    assert [sorted(r) for r in fast_ids] == [sorted(r) for r in plain_ids]
    torch.testing.assert_close(torch.as_tensor(fast_scores), torch.as_tensor(plain_scores), atol=1e-5, rtol=1e-4)


def test_bf16_backbone_gives_float32_vectors_close_to_fp32(tiny_bert_dir):
    module = BiEncoderModule(tiny_bert_dir)
    reference = module.encode_docs(TEXTS)
    fast = module.to(torch.bfloat16).encode_docs(TEXTS)
    assert fast.dtype == torch.float32
    cosine = torch.nn.functional.cosine_similarity(fast, reference)
    assert (cosine > 0.99).all()


def test_mean_pooling_sums_in_float32():
    states = torch.full((1, 512, 4), 1.0 + 2**-7, dtype=torch.bfloat16)  # a sum bf16 cannot hold exactly
    mask = torch.ones(1, 512, dtype=torch.long)
    pooled = Pooling("mean")(states, mask)
    assert pooled.dtype == torch.float32
    torch.testing.assert_close(pooled, torch.full((1, 4), 1.0 + 2**-7))


def test_every_document_is_indexed_whatever_the_worker_count(tiny_bert_dir, tiny_beir, tmp_path):
    module = BiEncoderModule(tiny_bert_dir)
    for workers in (0, 3, 4):  # 6 documents: 3 or 4 workers each end with a partial batch of their own
        data = DataModule(DocDataset(tiny_beir), inference_batch_size=4, num_workers=workers)
        assert sum(len(b.doc_ids) for b in data.predict_dataloader()[0]) == 6
        _trainer().index(module, data, tmp_path / f"w{workers}", FaissIndexConfig())
        assert open_searcher(tmp_path / f"w{workers}").manifest["count"] == 6


def test_overlapped_preparation_keeps_batch_order():
    import random
    import time

    from boltir.modules.device import overlapped

    batches = [[i, i + 1] for i in range(0, 40, 2)]
    rng = random.Random(0)

    def slow_prepare(batch: list[int]) -> torch.Tensor:  # preparing takes longer than computing, or less
        time.sleep(rng.random() / 200)
        return torch.tensor(batch)

    expected = [[2 * i, 2 * i + 2] for i in range(0, 40, 2)]
    for helper in (False, True):
        assert [t.tolist() for t in overlapped(batches, slow_prepare, lambda t: t * 2, helper=helper)] == expected
        assert overlapped([], lambda b: b, lambda t: t, helper=helper) == []
        assert [t.tolist() for t in overlapped([[7]], torch.tensor, lambda t: t, helper=helper)] == [[7]]


def test_cross_encoder_bf16_scores_stay_close_to_fp32(tiny_bert_dir):
    """The re-ranking fast path (bf16 backbone, head in float32) keeps scores and rankings of the fp32 path."""
    from boltir import CrossEncoderModule

    torch.manual_seed(0)
    module = CrossEncoderModule(tiny_bert_dir)
    assert module.forward_batch_size == 64  # CPU default
    with torch.no_grad():  # a head with weight: scores spread enough to rank
        module.model.head.weight.normal_(0, 1.0)
    docs = TEXTS * 4
    exact = module.score("capital of germany", docs).scores
    fast = module.to(torch.bfloat16).score("capital of germany", docs).scores
    assert fast.dtype == torch.float32  # no bf16 rounding of the scores themselves: no ties from it
    torch.testing.assert_close(fast, exact, atol=0.05, rtol=0.02)
    assert torch.equal(torch.argsort(fast, descending=True, stable=True)[:3].sort().values,
                       torch.argsort(exact, descending=True, stable=True)[:3].sort().values)


def test_cross_encoder_scores_alike_with_the_helper_thread(tiny_bert_dir, monkeypatch):
    """The GPU path (next batch tokenised in a helper thread, texts cached across batches, documents cut to fit
    beside the query) scores like the plain one."""
    from boltir import CrossEncoderModule
    from boltir.modules import cross_encoder, device

    module = CrossEncoderModule(tiny_bert_dir, encode_batch_size=2,
                                config_overrides={"max_length": 24, "query_length": 8})
    long_docs = [" ".join([t] * 6) for t in TEXTS]  # longer than max_length: cut only_second in the pair
    queries = ["capital of germany", "ocean tide", "tide"]
    docs = [TEXTS + long_docs, long_docs[::-1] + TEXTS[:1], long_docs]
    plain = module.score(queries, docs).scores
    monkeypatch.setattr(cross_encoder, "overlapped",
                        lambda batches, prepare, compute, helper: device.overlapped(batches, prepare, compute, helper=True))
    for _ in range(3):  # thread interleavings differ between calls
        threaded = module.score(queries, docs).scores
        for a, b in zip(plain, threaded):
            torch.testing.assert_close(a, b)


def test_bi_encoder_vectors_alike_with_the_helper_thread(tiny_bert_dir, monkeypatch):
    from boltir import BiEncoderModule
    from boltir.modules import bi_encoder, device

    module = BiEncoderModule(tiny_bert_dir)
    texts = TEXTS * 5 + [" ".join(TEXTS) * 4]
    plain = module.encode_docs(texts, batch_size=3)
    monkeypatch.setattr(bi_encoder, "overlapped",
                        lambda batches, prepare, compute, helper: device.overlapped(batches, prepare, compute, helper=True))
    torch.testing.assert_close(module.encode_docs(texts, batch_size=3), plain)


def test_trainer_runs_packed_batches_like_padded_ones(tiny_bert_dir, tiny_beir, tmp_path, monkeypatch):
    """Trainer.index (tokens from DataLoader workers) and Trainer.re_rank where batches run packed (the GPU kernel's
    condition faked here) give the index and the run that padded batches give."""
    from boltir import BM25IndexConfig, BM25Module, CrossEncoderModule, RunDataset
    from boltir.data.run import Run
    from boltir.models.layers.packing import PackedTokens
    from boltir.modules import device

    bi_encoder = BiEncoderModule(tiny_bert_dir)
    cross_encoder = CrossEncoderModule(tiny_bert_dir)
    _trainer().index(BM25Module(), DataModule(DocDataset(tiny_beir)), tmp_path / "bm25", BM25IndexConfig())
    _trainer().search(BM25Module(), DataModule(QueryDataset(tiny_beir)), tmp_path / "bm25", k=6,
                      run_path=tmp_path / "bm25.run", measures=[])

    def run_both(tag: str) -> Run:
        docs = DataModule(DocDataset(tiny_beir), inference_batch_size=4, num_workers=1)
        _trainer().index(bi_encoder, docs, tmp_path / f"{tag}-index", FaissIndexConfig())
        pairs = RunDataset(tmp_path / "bm25.run", tiny_beir, tiny_beir)
        _trainer().re_rank(cross_encoder, DataModule(pairs, inference_batch_size=2), run_path=tmp_path / f"{tag}.run",
                           measures=[])
        return Run.from_trec(tmp_path / f"{tag}.run")

    padded = run_both("padded")
    monkeypatch.setattr(device, "varlen_runs", lambda device, dtype: True)
    packed_calls: list[str] = []

    def counting(model):
        pack = model.pack
        return lambda inputs: packed_calls.append(type(model).__name__) or pack(inputs)

    monkeypatch.setattr(cross_encoder.model, "pack", counting(cross_encoder.model))
    arrived: list[str] = []  # the bi-encoder's batches are packed in the DataLoader's worker, before they arrive
    encode_docs = bi_encoder.model.encode_docs
    monkeypatch.setattr(bi_encoder.model, "encode_docs", lambda tokens: arrived.append(type(tokens).__name__) or encode_docs(tokens))
    packed = run_both("packed")
    assert set(packed_calls) == {"CrossEncoderModel"} and set(arrived) == {"PackedTokens"}  # both families ran packed
    queries = bi_encoder.encode_queries([q.text for q in QueryDataset(tiny_beir)])
    padded_scores, padded_ids = open_searcher(tmp_path / "padded-index").search_arrays(queries, 6)
    packed_scores, packed_ids = open_searcher(tmp_path / "packed-index").search_arrays(queries, 6)
    assert packed_ids == padded_ids
    torch.testing.assert_close(torch.as_tensor(packed_scores), torch.as_tensor(padded_scores), atol=1e-5, rtol=1e-4)
    for query_id in padded.query_ids:
        assert [d for d, _ in packed[query_id]] == [d for d, _ in padded[query_id]]
        torch.testing.assert_close(torch.tensor([s for _, s in packed[query_id]]),
                                   torch.tensor([s for _, s in padded[query_id]]), atol=1e-5, rtol=1e-4)
    assert isinstance(bi_encoder.model.pack(bi_encoder.model.tokenize_docs(TEXTS)), PackedTokens)


def test_batches_packed_in_workers_encode_like_padded_ones_where_the_module_runs_padded(tiny_bert_dir):
    """Workers pack when the module will run packed; a module that then runs padded unpacks the batch exactly."""
    from boltir.models.layers.packing import PackedTokens
    from boltir.modules.bi_encoder import TokenizeBatch

    module = BiEncoderModule(tiny_bert_dir).eval()
    packed = TokenizeBatch(module.model, 8, pack=True)(DocBatch(["a", "b", "c"], TEXTS))
    assert isinstance(packed.encoding, PackedTokens) and len(packed.encoding) == 3
    padded = module.model.tokenize_docs(TEXTS)
    unpacked = packed.encoding.padded()
    assert unpacked.keys() == padded.keys()
    for name, values in padded.items():
        assert torch.equal(unpacked[name][padded["attention_mask"].bool()], values[padded["attention_mask"].bool()])
        assert torch.equal(unpacked["attention_mask"], padded["attention_mask"])
    with torch.inference_mode():
        from_packed = module.predict_step(packed).embeddings
        from_texts = module.predict_step(DocBatch(["a", "b", "c"], TEXTS)).embeddings
    torch.testing.assert_close(from_packed, from_texts, atol=1e-5, rtol=1e-4)

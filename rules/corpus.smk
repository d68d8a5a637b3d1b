# Corpus stage: raw sources -> normalized -> heuristic filters -> KenLM perplexity filter ->
# MinHash dedup -> results/corpus/filtered/, with every rejected document kept in
# results/corpus/rejected/<step>/ and counted in results/corpus/stats.tsv.
# One job per source file (ingest) or per shard; the global rules (KenLM thresholds, dedup
# clusters, stats, tokenizer sample) read small per-shard summaries or signatures only.


include: "helpers/corpus.smk"


checkpoint corpus_ingest:
    input:
        source_file,
    output:
        shards=directory(paths.INGEST),
        rejected=directory(paths.INGEST_REJECTED),
    params:
        source=source_config,
        shard_docs=config["corpus"]["shard_docs"],
    conda:
        "../envs/corpus.yaml"
    log:
        paths.log("corpus_ingest", "{source}/{part}"),
    benchmark:
        paths.benchmark("corpus_ingest", "{source}/{part}"),
    resources:
        mem_mb=2000,
    script:
        "../scripts/corpus_ingest.py"


rule corpus_normalize:
    input:
        raw_shard,
    output:
        kept=paths.NORMALIZED,
        rejected=paths.rejected("normalize"),
        counts=paths.counts("normalize"),
    params:
        cfg=config["corpus"]["normalize"],
    conda:
        "../envs/corpus.yaml"
    log:
        paths.log("corpus_normalize", "{shard}"),
    benchmark:
        paths.benchmark("corpus_normalize", "{shard}"),
    resources:
        mem_mb=2000,
    script:
        "../scripts/corpus_normalize.py"


rule corpus_heuristics:
    input:
        paths.NORMALIZED,
    output:
        kept=paths.HEURISTICS,
        rejected=paths.rejected("heuristics"),
        counts=paths.counts("heuristics"),
    params:
        cfg=config["corpus"]["filters"],
        language=config["language"],
    conda:
        "../envs/corpus.yaml"
    log:
        paths.log("corpus_heuristics", "{shard}"),
    benchmark:
        paths.benchmark("corpus_heuristics", "{shard}"),
    resources:
        mem_mb=2000,
    script:
        "../scripts/corpus_heuristics.py"


rule corpus_kenlm_segmenter:
    input:
        KENLM["reference"],
    output:
        paths.KENLM_SEGMENTER,
    params:
        vocab_size=KENLM["sentencepiece_vocab"],
        seed=config["seed"],
    conda:
        "../envs/corpus.yaml"
    log:
        paths.log("corpus_kenlm_segmenter"),
    benchmark:
        paths.benchmark("corpus_kenlm_segmenter"),
    script:
        "../scripts/corpus_kenlm_segmenter.py"


rule corpus_kenlm_train:
    input:
        reference=KENLM["reference"],
        segmenter=kenlm_segmenter(),
    output:
        paths.KENLM_MODEL,
    params:
        order=KENLM["order"],
        prune=KENLM["prune"],
        memory=KENLM["memory"],
        segmentation=KENLM["segmentation"],
    conda:
        "../envs/corpus.yaml"
    log:
        paths.log("corpus_kenlm_train"),
    benchmark:
        paths.benchmark("corpus_kenlm_train"),
    resources:
        mem_mb=4000,
    script:
        "../scripts/corpus_kenlm_train.py"


rule corpus_kenlm_score:
    input:
        shard=paths.HEURISTICS,
        model=kenlm_model(),
        segmenter=kenlm_segmenter(),
    output:
        scored=paths.SCORED,
        histogram=paths.KENLM_HISTOGRAM,
    params:
        segmentation=KENLM["segmentation"],
    conda:
        "../envs/corpus.yaml"
    log:
        paths.log("corpus_kenlm_score", "{shard}"),
    benchmark:
        paths.benchmark("corpus_kenlm_score", "{shard}"),
    resources:
        mem_mb=3000,
    script:
        "../scripts/corpus_kenlm_score.py"


rule corpus_kenlm_thresholds:
    input:
        per_shard(paths.KENLM_HISTOGRAM),
    output:
        thresholds=paths.KENLM_THRESHOLDS,
        plot=report(
            paths.plot("corpus", "kenlm_log_ppl"),
            caption="../report/corpus_kenlm.rst",
            category="Corpus",
        ),
    params:
        trim=KENLM["trim"],
        k_low=KENLM["k_low"],
        k_high=KENLM["k_high"],
    conda:
        "../envs/corpus.yaml"
    log:
        paths.log("corpus_kenlm_thresholds"),
    benchmark:
        paths.benchmark("corpus_kenlm_thresholds"),
    script:
        "../scripts/corpus_kenlm_thresholds.py"


rule corpus_kenlm_filter:
    input:
        scored=paths.SCORED,
        thresholds=paths.KENLM_THRESHOLDS,
    output:
        kept=paths.PERPLEXITY,
        rejected=paths.rejected("perplexity"),
        counts=paths.counts("perplexity"),
    conda:
        "../envs/corpus.yaml"
    log:
        paths.log("corpus_kenlm_filter", "{shard}"),
    benchmark:
        paths.benchmark("corpus_kenlm_filter", "{shard}"),
    script:
        "../scripts/corpus_kenlm_filter.py"


rule corpus_minhash:
    input:
        paths.PERPLEXITY,
    output:
        paths.SIGNATURES,
    params:
        shingle=DEDUP["shingle"],
        shingle_size=DEDUP["shingle_size"],
        num_perm=DEDUP["num_perm"],
        bands=DEDUP["bands"],
        rows=DEDUP["rows"],
        seed=config["seed"],
    conda:
        "../envs/corpus.yaml"
    log:
        paths.log("corpus_minhash", "{shard}"),
    benchmark:
        paths.benchmark("corpus_minhash", "{shard}"),
    resources:
        mem_mb=2000,
    script:
        "../scripts/corpus_minhash.py"


rule corpus_dedup_candidates:
    input:
        per_shard(paths.SIGNATURES),
    output:
        paths.DEDUP_CANDIDATES,
    params:
        bands=lambda wc: [int(b) for b in BAND_GROUPS[int(wc.group)]],
        exact=lambda wc: int(wc.group) == 0,
        key_ranges=DEDUP["key_ranges"],
    conda:
        "../envs/corpus.yaml"
    log:
        paths.log("corpus_dedup_candidates", "{group}"),
    benchmark:
        paths.benchmark("corpus_dedup_candidates", "{group}"),
    resources:
        mem_mb=4000,
    script:
        "../scripts/corpus_dedup_candidates.py"


rule corpus_dedup_clusters:
    input:
        signatures=per_shard(paths.SIGNATURES),
        candidates=expand(paths.DEDUP_CANDIDATES, group=[f"{g:03d}" for g in range(len(BAND_GROUPS))]),
    output:
        duplicates=paths.DUPLICATES,
        summary=paths.DEDUP_SUMMARY,
    params:
        cfg={k: v for k, v in DEDUP.items() if k not in ("band_jobs", "key_ranges")},
        seed=config["seed"],
    conda:
        "../envs/corpus.yaml"
    log:
        paths.log("corpus_dedup_clusters"),
    benchmark:
        paths.benchmark("corpus_dedup_clusters"),
    resources:
        mem_mb=4000,
    script:
        "../scripts/corpus_dedup_clusters.py"


rule corpus_dedup_filter:
    input:
        shard=paths.PERPLEXITY,
        duplicates=paths.DUPLICATES,
    output:
        kept=paths.FILTERED,
        rejected=paths.rejected("dedup"),
        counts=paths.counts("dedup"),
    conda:
        "../envs/corpus.yaml"
    log:
        paths.log("corpus_dedup_filter", "{shard}"),
    benchmark:
        paths.benchmark("corpus_dedup_filter", "{shard}"),
    script:
        "../scripts/corpus_dedup_filter.py"


rule corpus_stats:
    input:
        ingest=ingest_counts,
        normalize=per_shard(paths.counts("normalize")),
        heuristics=per_shard(paths.counts("heuristics")),
        perplexity=per_shard(paths.counts("perplexity")),
        dedup=per_shard(paths.counts("dedup")),
        filtered=per_shard(paths.FILTERED),
    output:
        stats=report(paths.STATS, caption="../report/corpus_stats.rst", category="Corpus"),
        summary=report(paths.SUMMARY, caption="../report/corpus_stats.rst", category="Corpus"),
        funnel=report(
            paths.plot("corpus", "funnel"),
            caption="../report/corpus_funnel.rst",
            category="Corpus",
        ),
    conda:
        "../envs/corpus.yaml"
    log:
        paths.log("corpus_stats"),
    benchmark:
        paths.benchmark("corpus_stats"),
    script:
        "../scripts/corpus_stats.py"


rule corpus_tokenizer_sample:
    input:
        per_shard(paths.FILTERED),
    output:
        sample=paths.TOKENIZER_SAMPLE,
        info=paths.TOKENIZER_SAMPLE_INFO,
    params:
        max_mb=config["corpus"]["tokenizer_sample"]["max_mb"],
        seed=config["seed"],
    conda:
        "../envs/corpus.yaml"
    log:
        paths.log("corpus_tokenizer_sample"),
    benchmark:
        paths.benchmark("corpus_tokenizer_sample"),
    script:
        "../scripts/corpus_tokenizer_sample.py"

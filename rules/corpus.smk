# Corpus stage: raw sources -> normalized -> heuristic filters -> KenLM perplexity filter ->
# MinHash dedup -> results/corpus/filtered/, with every rejected document kept in
# results/corpus/rejected/<step>/ and counted in results/corpus/stats.tsv.
# One job per source file (ingest) or per shard; the global rules (KenLM thresholds, dedup
# clusters, stats, tokenizer sample) read small per-shard summaries or signatures only.


checkpoint ingest:
    input:
        source_file,
    output:
        shards=directory("results/corpus/ingest/{source}/{part}"),
        rejected=directory("results/corpus/rejected/ingest/{source}/{part}"),
    params:
        source=source_config,
        shard_docs=config["corpus"]["shard_docs"],
    conda:
        "../envs/corpus.yaml"
    log:
        "logs/corpus/ingest/{source}/{part}.log",
    benchmark:
        "logs/corpus/ingest/{source}/{part}.benchmark.tsv"
    resources:
        mem_mb=2000,
    script:
        "../scripts/corpus_ingest.py"


rule normalize:
    input:
        raw_shard,
    output:
        kept="results/corpus/normalized/{shard}.parquet",
        rejected="results/corpus/rejected/normalize/{shard}.parquet",
        counts="results/corpus/counts/normalize/{shard}.json",
    params:
        cfg=config["corpus"]["normalize"],
    conda:
        "../envs/corpus.yaml"
    log:
        "logs/corpus/normalize/{shard}.log",
    benchmark:
        "logs/corpus/normalize/{shard}.benchmark.tsv"
    resources:
        mem_mb=2000,
    script:
        "../scripts/corpus_normalize.py"


rule heuristics:
    input:
        "results/corpus/normalized/{shard}.parquet",
    output:
        kept="results/corpus/heuristics/{shard}.parquet",
        rejected="results/corpus/rejected/heuristics/{shard}.parquet",
        counts="results/corpus/counts/heuristics/{shard}.json",
    params:
        cfg=config["corpus"]["filters"],
        script_name=config["language"]["script"],
    conda:
        "../envs/corpus.yaml"
    log:
        "logs/corpus/heuristics/{shard}.log",
    benchmark:
        "logs/corpus/heuristics/{shard}.benchmark.tsv"
    resources:
        mem_mb=2000,
    script:
        "../scripts/corpus_heuristics.py"


rule kenlm_segmenter:
    input:
        config["corpus"]["kenlm"]["reference"],
    output:
        "results/corpus/kenlm/segmenter.model",
    params:
        vocab_size=config["corpus"]["kenlm"]["sentencepiece_vocab"],
        seed=config["seed"],
    conda:
        "../envs/corpus.yaml"
    log:
        "logs/corpus/kenlm_segmenter.log",
    benchmark:
        "logs/corpus/kenlm_segmenter.benchmark.tsv"
    script:
        "../scripts/corpus_kenlm_segmenter.py"


rule kenlm_train:
    input:
        reference=config["corpus"]["kenlm"]["reference"],
        segmenter=kenlm_segmenter(),
    output:
        "results/corpus/kenlm/model.binary",
    params:
        order=config["corpus"]["kenlm"]["order"],
        prune=config["corpus"]["kenlm"]["prune"],
        memory=config["corpus"]["kenlm"]["memory"],
        segmentation=config["corpus"]["kenlm"]["segmentation"],
    conda:
        "../envs/corpus.yaml"
    log:
        "logs/corpus/kenlm_train.log",
    benchmark:
        "logs/corpus/kenlm_train.benchmark.tsv"
    resources:
        mem_mb=4000,
    script:
        "../scripts/corpus_kenlm_train.py"


rule kenlm_score:
    input:
        shard="results/corpus/heuristics/{shard}.parquet",
        model=kenlm_model(),
        segmenter=kenlm_segmenter(),
    output:
        scored="results/corpus/scored/{shard}.parquet",
        histogram="results/corpus/kenlm/histograms/{shard}.json",
    params:
        segmentation=config["corpus"]["kenlm"]["segmentation"],
    conda:
        "../envs/corpus.yaml"
    log:
        "logs/corpus/kenlm_score/{shard}.log",
    benchmark:
        "logs/corpus/kenlm_score/{shard}.benchmark.tsv"
    resources:
        mem_mb=3000,
    script:
        "../scripts/corpus_kenlm_score.py"


rule kenlm_thresholds:
    input:
        per_shard("results/corpus/kenlm/histograms/{shard}.json"),
    output:
        thresholds="results/corpus/kenlm/thresholds.json",
        plot=report(
            "results/plots/corpus/kenlm_log_ppl.png",
            caption="../report/corpus_kenlm.rst",
            category="Corpus",
        ),
    params:
        trim=config["corpus"]["kenlm"]["trim"],
        k_low=config["corpus"]["kenlm"]["k_low"],
        k_high=config["corpus"]["kenlm"]["k_high"],
    conda:
        "../envs/corpus.yaml"
    log:
        "logs/corpus/kenlm_thresholds.log",
    benchmark:
        "logs/corpus/kenlm_thresholds.benchmark.tsv"
    script:
        "../scripts/corpus_kenlm_thresholds.py"


rule kenlm_filter:
    input:
        scored="results/corpus/scored/{shard}.parquet",
        thresholds="results/corpus/kenlm/thresholds.json",
    output:
        kept="results/corpus/perplexity/{shard}.parquet",
        rejected="results/corpus/rejected/perplexity/{shard}.parquet",
        counts="results/corpus/counts/perplexity/{shard}.json",
    conda:
        "../envs/corpus.yaml"
    log:
        "logs/corpus/kenlm_filter/{shard}.log",
    benchmark:
        "logs/corpus/kenlm_filter/{shard}.benchmark.tsv"
    script:
        "../scripts/corpus_kenlm_filter.py"


rule minhash:
    input:
        "results/corpus/perplexity/{shard}.parquet",
    output:
        "results/corpus/dedup/signatures/{shard}.parquet",
    params:
        shingle=config["corpus"]["dedup"]["shingle"],
        shingle_size=config["corpus"]["dedup"]["shingle_size"],
        num_perm=config["corpus"]["dedup"]["num_perm"],
        bands=config["corpus"]["dedup"]["bands"],
        rows=config["corpus"]["dedup"]["rows"],
        seed=config["seed"],
    conda:
        "../envs/corpus.yaml"
    log:
        "logs/corpus/minhash/{shard}.log",
    benchmark:
        "logs/corpus/minhash/{shard}.benchmark.tsv"
    resources:
        mem_mb=2000,
    script:
        "../scripts/corpus_minhash.py"


rule dedup_candidates:
    input:
        per_shard("results/corpus/dedup/signatures/{shard}.parquet"),
    output:
        "results/corpus/dedup/candidates/{group}.parquet",
    params:
        bands=lambda wc: dedup_bands(int(wc.group)),
        exact=lambda wc: int(wc.group) == 0,
        key_ranges=config["corpus"]["dedup"]["key_ranges"],
    conda:
        "../envs/corpus.yaml"
    log:
        "logs/corpus/dedup_candidates/{group}.log",
    benchmark:
        "logs/corpus/dedup_candidates/{group}.benchmark.tsv"
    resources:
        mem_mb=4000,
    script:
        "../scripts/corpus_dedup_candidates.py"


rule dedup_clusters:
    input:
        signatures=per_shard("results/corpus/dedup/signatures/{shard}.parquet"),
        candidates=expand("results/corpus/dedup/candidates/{group}.parquet", group=dedup_groups()),
    output:
        duplicates="results/corpus/dedup/duplicates.parquet",
        summary="results/corpus/dedup/summary.json",
    params:
        cfg={k: v for k, v in config["corpus"]["dedup"].items() if k not in ("band_jobs", "key_ranges")},
        seed=config["seed"],
    conda:
        "../envs/corpus.yaml"
    log:
        "logs/corpus/dedup_clusters.log",
    benchmark:
        "logs/corpus/dedup_clusters.benchmark.tsv"
    resources:
        mem_mb=4000,
    script:
        "../scripts/corpus_dedup_clusters.py"


rule dedup_filter:
    input:
        shard="results/corpus/perplexity/{shard}.parquet",
        duplicates="results/corpus/dedup/duplicates.parquet",
    output:
        kept="results/corpus/filtered/{shard}.parquet",
        rejected="results/corpus/rejected/dedup/{shard}.parquet",
        counts="results/corpus/counts/dedup/{shard}.json",
    conda:
        "../envs/corpus.yaml"
    log:
        "logs/corpus/dedup_filter/{shard}.log",
    benchmark:
        "logs/corpus/dedup_filter/{shard}.benchmark.tsv"
    script:
        "../scripts/corpus_dedup_filter.py"


rule corpus_stats:
    input:
        ingest=ingest_counts,
        normalize=per_shard("results/corpus/counts/normalize/{shard}.json"),
        heuristics=per_shard("results/corpus/counts/heuristics/{shard}.json"),
        perplexity=per_shard("results/corpus/counts/perplexity/{shard}.json"),
        dedup=per_shard("results/corpus/counts/dedup/{shard}.json"),
        filtered=per_shard("results/corpus/filtered/{shard}.parquet"),
    output:
        stats=report("results/corpus/stats.tsv", caption="../report/corpus_stats.rst", category="Corpus"),
        summary=report("results/corpus/summary.tsv", caption="../report/corpus_stats.rst", category="Corpus"),
        funnel=report(
            "results/plots/corpus/funnel.png",
            caption="../report/corpus_funnel.rst",
            category="Corpus",
        ),
    conda:
        "../envs/corpus.yaml"
    log:
        "logs/corpus/corpus_stats.log",
    benchmark:
        "logs/corpus/corpus_stats.benchmark.tsv"
    script:
        "../scripts/corpus_stats.py"


rule tokenizer_sample:
    input:
        per_shard("results/corpus/filtered/{shard}.parquet"),
    output:
        sample="results/corpus/tokenizer_sample.txt",
        info="results/corpus/tokenizer_sample.json",
    params:
        max_mb=config["corpus"]["tokenizer_sample"]["max_mb"],
        seed=config["seed"],
    conda:
        "../envs/corpus.yaml"
    log:
        "logs/corpus/tokenizer_sample.log",
    benchmark:
        "logs/corpus/tokenizer_sample.benchmark.tsv"
    script:
        "../scripts/corpus_tokenizer_sample.py"

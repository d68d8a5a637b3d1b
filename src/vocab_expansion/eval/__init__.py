"""Evaluation: intrinsic metrics (bits per byte, tokenizer efficiency, generation speed) and benchmarks."""

"""Vocabulary expansion (EEVE) for teaching an English-centric causal LM a new language.

Each workflow step is a plain Python API in a subpackage (``corpus``, later ``tokenizer``, ``model``,
``training``, ``eval``, ``report``) and a ``python -m vocab_expansion.<step>`` command; the Snakemake
rules in ``rules/`` only wire files to these functions.
"""

__version__ = "0.1.0"

"""lm-eval's own prompt and metric functions, re-exported so the local task YAMLs here prompt exactly as
lm-eval's hub tasks do (a YAML's ``!function`` names a module beside it)."""

from lm_eval.tasks.hellaswag.utils import process_docs as hellaswag_process_docs
from lm_eval.tasks.kobest.utils import (
    copa_doc_to_choice,
    copa_doc_to_target,
    copa_doc_to_text,
    hellaswag_process_doc,
    macro_f1_score,
    sentineg_doc_to_text,
    wic_doc_to_text,
)

__all__ = ["copa_doc_to_choice", "copa_doc_to_target", "copa_doc_to_text", "hellaswag_process_doc",
           "hellaswag_process_docs", "macro_f1_score", "sentineg_doc_to_text", "wic_doc_to_text"]

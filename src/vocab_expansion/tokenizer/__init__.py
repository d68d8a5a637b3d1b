"""Tokenizer stage: new target-language tokens chosen by frequency to a fixed point, merged into the base.

``base`` loads a base tokenizer (SentencePiece or byte-level BPE) and maps tokens to surface text;
``intermediate`` trains a tokenizer of the base's own kind on the corpus sample; ``select`` runs the
EEVE frequency loop; ``curate`` applies deny/allow lists, regex rules and the proper-noun filter;
``merge`` appends the tokens to the base so that every base id stays and every new token is
reachable; ``metrics`` measures tokens per word and friends; ``report`` writes tables and plots.
"""

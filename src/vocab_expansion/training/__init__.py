"""Training stage: data packing, the EEVE stages, variants and SFT."""

"""Model stage: the demo base model, vocabulary expansion and the initialization of new rows."""

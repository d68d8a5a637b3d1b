# Helpers of the model rules (rules/model.smk): input functions, params, targets.
def model_targets():
    """Final outputs of the model stage (so far: the expanded model)."""
    return [paths.EXPANDED]

"""The memory plan of a stage (bytes per GPU, before a byte is allocated) and the model FLOPs of a training token.

:func:`~.memory.plan_stage` counts the tensors of the stage model that its method built on the meta device
(:func:`~vocab_expansion.training.methods.build_stage_model`), the very parameters the trainer then fills:

* ``parameters``: every parameter in its storage dtype (frozen ones in the stage's precision, trainable ones in
  fp32); ``gradients``: one per trainable parameter, in its dtype; ``optimizer``: AdamW's ``exp_avg`` and
  ``exp_avg_sq`` per trainable parameter plus its float32 ``step`` scalar. Under ``fsdp`` each tensor is split on
  dimension 0 the way ``torch.chunk`` splits it over the processes and the figure is rank 0's (the largest
  shard). These three are exact (the tests sum the real tensors).
* ``buffers``: ``ddp_buckets``, DDP's gradient buckets beyond the gradients (none: the trainer makes the
  gradients views into the buckets, ``gradient_as_bucket_view=True``); ``fsdp_gathered``, FSDP2's unsharded
  parameters in the compute dtype (the root unit, i.e. embeddings, final norm and lm_head, stays gathered for the
  whole step, plus the largest decoder block twice, the one computing and the one prefetched) and the
  unsharded gradients of the largest unit with trainable parameters (compute dtype, and their float32
  reduce-scatter input); ``autocast_copies``, the bf16 copies autocast makes of trainable fp32 weights (DDP
  with ``precision: bf16``).
* ``activations``: an estimate (:mod:`.activations`) of what autograd keeps for a micro-batch, with and without
  gradient checkpointing, plus the chunked loss's logits. The peaks of buffers and activations do not all
  coincide, so the total leans to the high side.

``total`` is parameters + gradients + optimizer + buffers + the activations that apply.
:func:`~.memory.check_fits` turns a total above a GPU's memory into a :class:`~vocab_expansion.errors.ConfigError`
that says what would fit; :func:`~.workflow.plan_config` plans every stage of every variant of a workflow config
from a base model's ``config.json`` alone (``python -m vocab_expansion.training plan``, the workflow's plan rule);
:mod:`.report` writes the tables; :mod:`.flops` counts the model FLOPs of a token (the MFU of the throughput rows).
"""

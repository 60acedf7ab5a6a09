"""Multi-task models: raw features in, `{task_name: prediction}` out."""

from mtrec.models.mixture_of_experts import MMoE, OMoE
from mtrec.models.multi_task_model import MultiTaskModel
from mtrec.models.progressive_layered_extraction import CGC, PLE
from mtrec.models.shared_bottom import SharedBottom
from mtrec.models.single_task import SingleTask

MODELS = {cls.__name__: cls for cls in (SingleTask, SharedBottom, OMoE, MMoE, CGC, PLE)}

__all__ = ["MultiTaskModel", "SingleTask", "SharedBottom", "OMoE", "MMoE", "CGC",
           "PLE", "MODELS"]

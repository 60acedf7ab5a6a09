"""Multi-task models: raw features in, `{task_name: prediction}` out."""

from mtrec.models.adversarial_shared_private import SharedPrivate
from mtrec.models.cross_stitch import CrossStitch
from mtrec.models.dselect_k import DSelectK
from mtrec.models.funnel import AITM, ESMM, FUNNEL_TASKS, funnel_tasks
from mtrec.models.mixture_of_experts import MMoE, OMoE
from mtrec.models.multi_scenario import MultiScenarioModel
from mtrec.models.multi_task_model import MultiTaskModel
from mtrec.models.pepnet import PEPNet
from mtrec.models.progressive_layered_extraction import CGC, PLE
from mtrec.models.shared_bottom import SharedBottom
from mtrec.models.single_task import SingleTask
from mtrec.models.star import STAR

MODELS = {cls.__name__: cls for cls in (SingleTask, SharedBottom, OMoE, MMoE, CGC, PLE,
                                        CrossStitch, DSelectK, STAR, PEPNet,
                                        SharedPrivate)}
# Chained CTR -> CVR heads; they need the schema's tasks to be funnel_tasks().
FUNNEL_MODELS = {cls.__name__: cls for cls in (ESMM, AITM)}
ALL_MODELS = {**MODELS, **FUNNEL_MODELS}

__all__ = ["AITM", "ESMM", "FUNNEL_MODELS", "ALL_MODELS", "FUNNEL_TASKS", "funnel_tasks", "MultiTaskModel", "SingleTask", "SharedBottom", "OMoE", "MMoE", "CGC",
           "PLE", "CrossStitch", "DSelectK", "STAR", "PEPNet", "SharedPrivate", "MultiScenarioModel", "MODELS"]

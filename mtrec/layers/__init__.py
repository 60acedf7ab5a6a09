"""Keras layers of mtrec; every one is registered for serialisation."""

from mtrec.layers.cgc import CGC
from mtrec.layers.expert_gates import ExpertGates
from mtrec.layers.experts import Experts
from mtrec.layers.feature_embedding import FeatureEmbedding
from mtrec.layers.feature_preprocessing import FeaturePreprocessing
from mtrec.layers.information_transfer import InformationTransfer, calibration_penalty
from mtrec.layers.mixture_of_experts import MixtureOfExperts
from mtrec.layers.mlp import MLP
from mtrec.layers.ple import PLE
from mtrec.layers.shared_bottom import SharedBottom
from mtrec.layers.task_towers import TaskTowers

__all__ = ["CGC", "ExpertGates", "Experts", "FeatureEmbedding",
           "FeaturePreprocessing", "InformationTransfer", "calibration_penalty", "MixtureOfExperts", "MLP", "PLE",
           "SharedBottom", "TaskTowers"]

# Multimodal side features: text encoders, gated fusion, modality experts.
from mtrec.layers.modality_cgc import ModalityCGC  # noqa: E402
from mtrec.layers.modality_experts import ModalityExperts  # noqa: E402
from mtrec.layers.modality_fusion import ModalityFusion  # noqa: E402
from mtrec.layers.modality_mixture_of_experts import ModalityMixtureOfExperts  # noqa: E402
from mtrec.layers.modality_ple import ModalityPLE  # noqa: E402
from mtrec.layers.text_encoder import TextEncoder  # noqa: E402

__all__ += ["ModalityCGC", "ModalityExperts", "ModalityFusion",
            "ModalityMixtureOfExperts", "ModalityPLE", "TextEncoder"]

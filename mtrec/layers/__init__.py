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

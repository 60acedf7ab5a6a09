"""Keras layers of mtrec; every one is registered for serialisation."""

from mtrec.layers.backbone import Backbone
from mtrec.layers.cgc import CGCBackbone
from mtrec.layers.cross_stitch import CrossStitchBackbone
from mtrec.layers.dselect_k import DSelectKBackbone
from mtrec.layers.dselect_k_gates import DSelectKGates
from mtrec.layers.expert_gates import ExpertGates
from mtrec.layers.experts import Experts
from mtrec.layers.feature_embedding import FeatureEmbedding
from mtrec.layers.feature_preprocessing import FeaturePreprocessing
from mtrec.layers.gate_nu import GateNU
from mtrec.layers.gradient_reversal import GradientReversal
from mtrec.layers.grouped_experts import GroupedExperts
from mtrec.layers.information_transfer import InformationTransfer, calibration_penalty
from mtrec.layers.mixture_of_experts import MixtureOfExperts
from mtrec.layers.mlp import MLP
from mtrec.layers.modality_fusion import ModalityFusion
from mtrec.layers.modality_losses import (
    Alignment, ModalityLosses, Reconstruction, info_nce, reconstruction_loss)
from mtrec.layers.numeric_encoding import NumericEmbedding
from mtrec.layers.partitioned_normalization import PartitionedNormalization
from mtrec.layers.pepnet import PEPNetBackbone
from mtrec.layers.ple import PLEBackbone
from mtrec.layers.shared_bottom import SharedBottomBackbone
from mtrec.layers.shared_private import SharedPrivateBackbone, orthogonality_penalty
from mtrec.layers.star import StarBackbone
from mtrec.layers.task_bottoms import TaskBottoms
from mtrec.layers.task_towers import TaskTowers
from mtrec.layers.text_encoder import TextEncoder
# Registers the 0.1.0 names (CGC, PLE, SharedBottom, Modality*) so old
# .keras files load; they are not part of the public API.
from mtrec.layers import legacy_aliases  # noqa: F401

__all__ = ["Backbone", "CGCBackbone", "CrossStitchBackbone", "DSelectKBackbone",
           "DSelectKGates", "ExpertGates", "Experts", "FeatureEmbedding",
           "FeaturePreprocessing", "GateNU", "GradientReversal", "GroupedExperts",
           "InformationTransfer", "calibration_penalty", "MixtureOfExperts", "MLP",
           "ModalityFusion", "ModalityLosses", "Reconstruction", "Alignment", "info_nce",
           "reconstruction_loss", "NumericEmbedding", "PartitionedNormalization", "PEPNetBackbone",
           "PLEBackbone", "SharedBottomBackbone", "SharedPrivateBackbone",
           "orthogonality_penalty", "StarBackbone", "TaskBottoms", "TaskTowers",
           "TextEncoder"]

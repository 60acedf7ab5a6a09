"""The layer names of mtrec 0.1.0, kept so that its `.keras` files load.

0.1.0 had a twin class per modality-grouped backbone and layers named like
models. They are now one class each, with `modalities=` as an argument
(`MixtureOfExperts`, `CGCBackbone`, `PLEBackbone`, `GroupedExperts`,
`SharedBottomBackbone`). Each old registered name resolves to a subclass
here that reads the old config and keeps the old weight layout: Keras
files the weights of a list of layers under their snake-cased class
names (`levels/cgc`, `levels/modality_cgc`), so the PLE aliases build
levels of the old class names. New code should not use these names.
"""

import keras

from mtrec.layers.cgc import CGCBackbone
from mtrec.layers.grouped_experts import GroupedExperts
from mtrec.layers.mixture_of_experts import MixtureOfExperts
from mtrec.layers.ple import PLEBackbone
from mtrec.layers.shared_bottom import SharedBottomBackbone


def _register(cls):
    return keras.saving.register_keras_serializable(package="mtrec.layers")(cls)


@_register
class CGC(CGCBackbone):
    """0.1.0's `mtrec.layers.CGC`; now `CGCBackbone`."""


@_register
class ModalityCGC(CGCBackbone):
    """0.1.0's CGC level over modality groups; now `CGCBackbone(modalities=...)`."""


@_register
class PLE(PLEBackbone):
    """0.1.0's `mtrec.layers.PLE`; now `PLEBackbone`."""

    def level_class(self, level):
        return CGC


@_register
class ModalityPLE(PLEBackbone):
    """0.1.0's PLE over modality groups; now `PLEBackbone(modalities=...)`."""

    def level_class(self, level):
        return ModalityCGC if level == 0 else CGC


@_register
class ModalityMixtureOfExperts(MixtureOfExperts):
    """0.1.0's MoE over modality groups; now `MixtureOfExperts(modalities=...)`."""


@_register
class ModalityExperts(GroupedExperts):
    """0.1.0's `ModalityExperts`; now `GroupedExperts`."""


@_register
class SharedBottom(SharedBottomBackbone):
    """0.1.0's `mtrec.layers.SharedBottom(units, num_outputs)`; now
    `SharedBottomBackbone(num_tasks, units)` (`num_outputs` is read as
    `num_tasks` by `Backbone.from_config`)."""


def layout_0_1_0(backbone_class, modalities):
    """The class that builds `backbone_class` with the weight layout of
    mtrec 0.1.0, for a named model read from a 0.1.0 file (whose config
    has no `format_version`). Only PLE's levels were filed differently."""
    if backbone_class is PLEBackbone:
        return ModalityPLE if modalities is not None else PLE
    return backbone_class

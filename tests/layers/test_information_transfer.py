"""InformationTransfer (AITM); its behaviour in a model is in tests/models/test_funnel.py."""

import numpy as np

from mtrec.layers import InformationTransfer


def test_information_transfer_contract(run_layer_test):
    rng = np.random.default_rng(0)
    previous, current = (rng.normal(size=(4, 3)).astype("float32") for _ in range(2))
    run_layer_test(InformationTransfer, dict(units=3), (previous, current), (4, 3),
                   expected_num_trainable_weights=5)

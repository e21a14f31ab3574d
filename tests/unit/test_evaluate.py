import math

import pytest
import torch

from learntolearn.engine.evaluate import (
    Evaluation,
    confidence_interval,
    paired_difference,
)


def test_confidence_interval_is_1_96_sample_sd_over_sqrt_n():
    values = torch.tensor([0.8, 1.0, 0.9, 0.7], dtype=torch.float64)
    sd = math.sqrt(sum((v - 0.85) ** 2 for v in [0.8, 1.0, 0.9, 0.7]) / 3)
    assert confidence_interval(values) == pytest.approx(1.96 * sd / 2)
    result = Evaluation(values)
    assert result.mean == pytest.approx(0.85) and "85.00 ±" in str(result)


def test_paired_difference_uses_per_episode_differences():
    a = Evaluation(torch.tensor([0.9, 0.8, 1.0, 0.7], dtype=torch.float64))
    b = Evaluation(a.accuracies - 0.1)
    mean, ci = paired_difference(a, b)
    assert mean == pytest.approx(0.1) and ci == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="same episodes"):
        paired_difference(a, Evaluation(torch.zeros(3, dtype=torch.float64)))

"""Learning to optimize: a coordinate-wise LSTM optimizer meta-trained on a family of problems."""

from learntolearn.l2o.lstm_optimizer import (
    CoordinatewiseLSTM,
    LearnedOptimizer,
    meta_train,
    run_optimizer,
)
from learntolearn.l2o.problems import GlyphMLP, Problem, Quadratics

__all__ = ["CoordinatewiseLSTM", "GlyphMLP", "LearnedOptimizer", "Problem", "Quadratics", "meta_train", "run_optimizer"]

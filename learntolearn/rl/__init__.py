"""Meta-reinforcement learning: task distributions with batched simulators, and the reference learners that
meta-learned ones are compared with."""

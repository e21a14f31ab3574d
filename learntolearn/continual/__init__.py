"""Continual meta-learning: representations meta-learned so that online learning of class after class does not
forget (OML, ANML), the class-incremental protocol they are evaluated on, and online learners for streams."""

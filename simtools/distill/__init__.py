"""Distillation: a teacher ensemble, the losses of the four classic methods, and the trainer
that turns them into a small numpy student (torch is needed for training only)."""

"""fmnist: a reproducible Fashion-MNIST pipeline (data, models, engine, plots).

The DVC stages in ``stages/`` are thin entry points; everything they do lives here so
that tests call the same code the pipeline runs.
"""

__version__ = "0.1.0"

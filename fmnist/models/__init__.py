"""The model zoo: see :mod:`fmnist.models.registry` for how models are found by name.

Importing the package registers every family below, so the registry itself never imports
the modules that use it (imports point one way: families -> registry).
"""

from fmnist.models import classic, cnn, fast, recurrent, resnet, sequential  # noqa: F401
from fmnist.models.registry import (
    arch_defaults,
    build_model,
    check_arch,
    list_models,
    register_model,
)

__all__ = ["arch_defaults", "build_model", "check_arch", "list_models", "register_model"]

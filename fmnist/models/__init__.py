"""The model zoo: see :mod:`fmnist.models.registry` for how models are found by name."""

from fmnist.models.registry import (
    arch_defaults,
    build_model,
    check_arch,
    list_models,
    register_model,
)

__all__ = ["arch_defaults", "build_model", "check_arch", "list_models", "register_model"]

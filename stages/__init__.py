"""DVC stage entry points: ``python -m stages.<name>`` from the repository root.

Importing this package pins the CPU kernels as ``train.reproducible`` asks
(:mod:`fmnist.core.kernels`), before any stage module imports torch: the kernel
libraries read that setting once, when they first compute.
"""

from fmnist.core.kernels import pin_from_params

pin_from_params()

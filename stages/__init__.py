"""DVC stage entry points: ``python -m stages.<name>`` from the repository root.

Importing this package pins the CPU kernels as ``train.reproducible`` asks
(:mod:`fmnist.core.kernels`), before any stage module imports torch: the kernel
libraries read that setting once, when they first compute. It also ties the stage's
life to the ``dvc`` process that started it (:mod:`fmnist.core.lifeline`).
"""

from fmnist.core import lifeline
from fmnist.core.kernels import pin_from_params

pin_from_params()
lifeline.hold()

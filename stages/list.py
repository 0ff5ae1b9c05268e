"""``python -m stages.list``: the registered model names and their architecture options."""

from fmnist.models import arch_defaults, list_models


def main() -> None:
    for name in list_models():
        options = ", ".join(f"{k}={v!r}" for k, v in arch_defaults(name).items())
        print(f"{name:10} {options}")


if __name__ == "__main__":
    main()

"""``python -m uniseg`` (and ``torchrun -m uniseg train …``): the ``uniseg`` command."""

from uniseg.cli.main import main

if __name__ == "__main__":
    main()

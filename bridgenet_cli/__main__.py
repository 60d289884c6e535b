"""Allow ``python -m bridgenet_cli`` (and ``torchrun -m bridgenet_cli``)."""

from bridgenet_cli.cli.app import main

if __name__ == "__main__":
    main()

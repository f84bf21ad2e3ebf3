"""Allow ``python -m derptool``."""

from derptool.cli import main

if __name__ == "__main__":
    main()

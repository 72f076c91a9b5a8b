"""`python -m dermalens.evaluate`: the documented name of `python -m dermalens.training.evaluate`."""

import sys

from dermalens.training.evaluate import main

if __name__ == "__main__":
    sys.exit(main())

"""`python -m dermalens.train`: the documented name of `python -m dermalens.training.train`."""

import sys

from dermalens.training.train import main

if __name__ == "__main__":
    sys.exit(main())

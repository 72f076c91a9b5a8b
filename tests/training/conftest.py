"""The tiny network the training and inference tests share, trained once per session."""

import pytest

from tests.training.tiny import make_dataset


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    from dermalens.training import train

    root = tmp_path_factory.mktemp("training")
    make_dataset(root / "data")
    args = ["--data", str(root / "data"), "--out", str(root / "models"), "--name", "tiny",
            "--work-dir", str(root / "work"), "--epochs", "2", "--input-size", "32",
            "--widths", "8,8,16,16", "--batch-size", "8", "--val-fraction", "0.5"]
    assert train.main(args) == 0
    return root

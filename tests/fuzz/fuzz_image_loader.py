"""Coverage-guided fuzzing of the upload decoder (run by hand; not part of `make test`).

    .venv/bin/pip install atheris
    .venv/bin/python tests/fuzz/fuzz_image_loader.py -max_total_time=300 tests/fuzz/corpus

Any exception other than InvalidImage is a bug: uploads must be refused cleanly, never crash.
"""

import sys

import atheris

with atheris.instrument_imports():
    from dermalens import preprocessing


def test_one_input(data: bytes) -> None:
    try:
        rgb = preprocessing.decode_image(data, max_side=1024)
    except preprocessing.InvalidImage:
        return
    assert rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype.name == "uint8"
    preprocessing.network_input(preprocessing.prepare(rgb), 128)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()

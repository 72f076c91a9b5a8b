"""A teacher's probabilities on a fixed set of device-style views of every training image.

    python -m dermalens.training.teacher --data ../shared/data/ham10000 \
        --out models/teacher/sklesion-views-4.npz [--views 6] [--resume] [--extend SMALLER.npz]

The teacher is the ImageNet-pretrained Xception of the PyPI package `sklesion` (0.2.2, MIT; image
plus age, sex and body site; trained on full-resolution HAM10000), which loses far less than a
network trained from scratch here on other clinics' dermoscopes. It is never served. Its outputs
on the views of `device_views.render_view` are computed once (resumable: the file is rewritten every
CHUNK images) and committed (models/teacher/: float16 probabilities only, 0.8 MB for 4 views);
`dermalens.train --teacher-views FILE` then trains the ResNet to match them on exactly those views. Install it with `pip install --no-deps
sklesion==0.2.2` (its declared pins are older than this project's; it loads with our Keras).

Views are deterministic, so a cache of more views can grow from one of fewer: with `--extend
SMALLER`, each image's first views are copied from SMALLER (same recipe) and only the views it
lacks are computed.
"""

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

from dermalens import config, preprocessing
from dermalens.lesions import CLASSES
from dermalens.training import data, device_views

TEACHER = "sklesion 0.2.2 (Xception, 254 px, image + metadata)"
TEACHER_SIZE = 254
CHUNK = 256
BATCH = 32
# sklesion's metadata: one-hot sex (female, male, unknown), one-hot site (5 groups), age / 90 and
# an age-missing flag (a missing age is its training mean).
SEX_ORDER = ("female", "male")
SITE_GROUPS = {"upper extremity": "arm", "hand": "arm",
               "face": "head-or-neck", "scalp": "head-or-neck", "ear": "head-or-neck", "neck": "head-or-neck",
               "lower extremity": "leg-or-genital", "foot": "leg-or-genital", "genital": "leg-or-genital",
               "back": "trunk", "chest": "trunk", "abdomen": "trunk", "trunk": "trunk"}
SITE_ORDER = ("arm", "head-or-neck", "leg-or-genital", "trunk")
AGE_MEAN, AGE_MAX = 51.90180032733224, 90.0


def teacher_metadata(age: int | None, sex: str | None, site: str | None) -> np.ndarray:
    """sklesion's 10-value metadata vector for one patient (any field may be None)."""
    vector = np.zeros(10, np.float32)
    vector[SEX_ORDER.index(sex) if sex in SEX_ORDER else 2] = 1.0
    group = SITE_GROUPS.get(site)
    vector[3 + (SITE_ORDER.index(group) if group else 4)] = 1.0
    vector[8] = (AGE_MEAN if age is None else age) / AGE_MAX
    vector[9] = float(age is None)
    return vector


def load_teacher():
    """The sklesion Keras model, loaded from its package folder without importing the package
    (whose module imports pandas)."""
    spec = importlib.util.find_spec("sklesion")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the teacher needs the sklesion package: pip install --no-deps sklesion==0.2.2")
    import keras

    return keras.models.load_model(Path(spec.submodule_search_locations[0]) / "model.keras", compile=False)


def read_cache(path: Path, view_count: int | None = None) -> dict:
    """A cache written by `write_cache` as {"image_ids": [...], "probabilities": (n, views, 7)}.

    :param view_count: the number of views it must hold; None takes whatever it holds.
    :raise SystemExit: it was made with another view recipe, or holds another number of views.
    """
    with np.load(path, allow_pickle=False) as saved:
        held = saved["probabilities"].shape[1]
        if int(saved["views_version"]) != device_views.VERSION or view_count not in (None, held):
            wanted = "any number" if view_count is None else view_count
            raise SystemExit(f"{path} holds {held} views of recipe {int(saved['views_version'])}, "
                             f"not {wanted} of recipe {device_views.VERSION}")
        return {"image_ids": saved["image_ids"].tolist(), "probabilities": saved["probabilities"]}


def write_cache(path: Path, image_ids: list[str], probabilities: np.ndarray) -> None:
    """Write the cache atomically (a crash mid-write leaves the previous file)."""
    partial = path.with_name(path.name + ".partial.npz")
    np.savez(partial, image_ids=np.array(image_ids), probabilities=probabilities.astype(np.float16),
             views_version=np.array(device_views.VERSION), teacher=np.array(TEACHER))
    partial.replace(path)


def teacher_probabilities(model, rgb: np.ndarray, row: dict, views: range) -> np.ndarray:
    """(len(views), 7) probabilities of the teacher on those views of one decoded image."""
    import cv2

    batch = np.stack([cv2.resize(device_views.render_view(rgb, row["image_id"], index), (TEACHER_SIZE, TEACHER_SIZE),
                                 interpolation=cv2.INTER_LINEAR) for index in views]).astype(np.float32)
    metadata = np.repeat(teacher_metadata(row["age"], row["sex"], row["site"])[None], len(views), 0)
    return np.asarray(model.predict_on_batch([batch, metadata]), np.float64)


def read_smaller_cache(path: Path, view_count: int) -> dict[str, np.ndarray]:
    """{image_id: (k, 7)} from a cache of the same recipe with k < view_count views, to extend.

    :raise SystemExit: it holds as many views or more, or another recipe.
    """
    cache = read_cache(path)
    known = cache["probabilities"].shape[1]
    if known >= view_count:
        raise SystemExit(f"{path} holds {known} views: --extend needs a cache of fewer than --views {view_count}")
    return dict(zip(cache["image_ids"], np.asarray(cache["probabilities"], np.float64)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="HAM10000-style folder")
    parser.add_argument("--out", required=True, type=Path, help="the cache (.npz) to write")
    parser.add_argument("--views", type=int, default=6, help="views per image (view 0 is the image itself)")
    parser.add_argument("--limit", type=int, help="only the first N images (smoke runs)")
    parser.add_argument("--resume", action="store_true", help="continue an unfinished cache")
    parser.add_argument("--extend", type=Path, metavar="SMALLER",
                        help="a cache of fewer views of the same recipe whose outputs are copied, not recomputed")
    args = parser.parse_args(argv)
    if args.views < 1:
        parser.error("--views must be at least 1")
    config.quiet_tensorflow()
    known = read_smaller_cache(args.extend, args.views) if args.extend else {}
    rows = data.read_ham10000(args.data, args.limit)
    done = read_cache(args.out, args.views) if args.resume and args.out.exists() else {"image_ids": [],
                                                                                       "probabilities": np.zeros((0, args.views, len(CLASSES)))}
    image_ids, probabilities = list(done["image_ids"]), [np.asarray(done["probabilities"], np.float64)]
    cached = set(image_ids)
    todo = [row for row in rows if row["image_id"] not in cached]
    print(f"{len(image_ids)} images cached, {len(todo)} to go", flush=True)
    if not todo:
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model = load_teacher()
    for start in range(0, len(todo), CHUNK):
        chunk = todo[start:start + CHUNK]
        for row in chunk:
            rgb = preprocessing.decode_image((args.data / "images" / f"{row['image_id']}.jpg").read_bytes())
            copied = known.get(row["image_id"], np.zeros((0, len(CLASSES))))
            computed = teacher_probabilities(model, rgb, row, range(len(copied), args.views))
            probabilities.append(np.concatenate([copied, computed])[None])
            image_ids.append(row["image_id"])
        write_cache(args.out, image_ids, np.concatenate(probabilities))
        print(f"{len(image_ids)} of {len(rows)} images", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

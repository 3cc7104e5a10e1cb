"""Classification data: the ImageFolder check (a table of bad folders), datasets, the synthetic set."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from classify_helpers import SMALL, write_png

from trainer_engine.data.classify import (
    ClassificationDataset,
    DatasetError,
    build_dataloader,
    check_cls_dataset,
    ensure_synthetic,
    parse_spec,
)
from trainer_engine.data.classify import synthetic as synthetic_mod

GOOD = {"train": {"cat": 2, "dog": 2}, "val": {"cat": 1, "dog": 1}}


def test_good_folder(make_folder: Callable[..., Path]) -> None:
    root = make_folder(GOOD)
    data = check_cls_dataset(root)
    assert data["nc"] == 2
    assert data["names"] == {0: "cat", 1: "dog"}
    assert data["train"] == root / "train" and data["val"] == root / "val"


def _corrupt_one(root: Path) -> None:
    (root / "train" / "dog" / "0.png").write_bytes(b"not a png")


def _corrupt_class(root: Path) -> None:
    for p in (root / "train" / "dog").iterdir():
        p.write_bytes(b"\x89PNG\r\n\x1a\n broken")


def _loose_images(root: Path) -> None:
    for p in (root / "train").iterdir():
        for f in p.iterdir():
            f.rename(root / "train" / f"{p.name}{f.name}")
        p.rmdir()


BAD_FOLDERS = [
    # (name, layout, mutate(root) or None, data=(root -> value), expected message part)
    ("missing folder", GOOD, None, lambda r: r / "nope", "not found"),
    ("data is a file", GOOD, None, lambda r: write_png(r / "x.png"), "is a file, not a folder"),
    ("no data", GOOD, None, lambda r: "", "data is not set"),
    ("missing train", {"val": GOOD["val"]}, None, lambda r: r, "has no train/ folder"),
    ("missing val", {"train": GOOD["train"]}, None, lambda r: r, "has no val/ folder"),
    ("no classes", {"train": {}, "val": {}}, None, lambda r: r, "has no class folders"),
    ("loose images", GOOD, _loose_images, lambda r: r, "move them into class subfolders"),
    ("one class", {"train": {"cat": 2}, "val": {"cat": 1}}, None, lambda r: r, "needs at least 2"),
    ("empty class", {"train": {"cat": 2, "dog": 0}, "val": GOOD["val"]}, None, lambda r: r, "train/dog"),
    ("empty val class", {"train": GOOD["train"], "val": {"cat": 1, "dog": 0}}, None, lambda r: r, "val/dog"),
    (
        "mismatched classes",
        {"train": GOOD["train"], "val": {"cat": 1, "cow": 1}},
        None,
        lambda r: r,
        "only in train: ['dog'], only in val: ['cow']",
    ),
    ("all images of a class corrupt", GOOD, _corrupt_class, lambda r: r, "no readable images: train/dog"),
    ("unknown synthetic set", GOOD, None, lambda r: "synthetic:detect", "unknown synthetic data set"),
    (
        "unknown synthetic option",
        GOOD,
        None,
        lambda r: "synthetic:classify?clases=3",
        "did you mean 'classes'",
    ),
    ("non-integer option", GOOD, None, lambda r: "synthetic:classify?size=big", "must be an integer"),
    ("option out of range", GOOD, None, lambda r: "synthetic:classify?classes=99", "between 2 and 10"),
    (
        "fewer images than classes",
        GOOD,
        None,
        lambda r: "synthetic:classify?val=3",
        "at least one image per class",
    ),
]


@pytest.mark.parametrize(
    ("layout", "mutate", "data", "message"), [c[1:] for c in BAD_FOLDERS], ids=[c[0] for c in BAD_FOLDERS]
)
def test_bad_folders(make_folder: Callable[..., Path], layout, mutate, data, message: str) -> None:
    root = make_folder(layout)
    if mutate:
        mutate(root)
    with pytest.raises(DatasetError) as e:
        check_cls_dataset(data(root))
    assert message in str(e.value)


def test_corrupt_image_is_skipped_with_a_warning(make_folder, caplog: pytest.LogCaptureFixture) -> None:
    root = make_folder(GOOD)
    _corrupt_one(root)
    with caplog.at_level(logging.WARNING):
        data = check_cls_dataset(root)
    assert (
        "skipping 1 unreadable image" in caplog.text and str(root / "train" / "dog" / "0.png") in caplog.text
    )
    ds = ClassificationDataset(data["train"], SimpleNamespace(imgsz=8), names=data["names"])
    assert len(ds) == 3


def test_image_broken_after_scan_names_the_file(make_folder) -> None:
    root = make_folder(GOOD, name="later")
    data = check_cls_dataset(root)
    ds = ClassificationDataset(data["val"], SimpleNamespace(imgsz=8), names=data["names"])
    Path(ds.samples[0][0]).write_bytes(b"garbage")
    with pytest.raises(DatasetError, match=r"cannot read image .*0\.png"):
        ds[0]


def test_dataset_items_and_loader(make_folder) -> None:
    data = check_cls_dataset(make_folder(GOOD))
    args = SimpleNamespace(imgsz=16, auto_augment="randaugment", erasing=0.4, fraction=0.5)
    ds = ClassificationDataset(data["train"], args, augment=True, names=data["names"])
    assert sorted(c for _, c in ds.samples) == [0, 1]  # fraction keeps every class
    item = ds[0]
    assert item["img"].shape == (3, 16, 16) and item["img"].dtype == torch.float32
    batch = next(iter(build_dataloader(ds, batch=2, workers=0, shuffle=False)))
    assert batch["img"].shape == (2, 3, 16, 16) and batch["cls"].tolist() == [0, 1]


def test_synthetic_is_deterministic_cached_and_complete(data_dir: Path) -> None:
    spec = "synthetic:classify?classes=3&train=6&val=3&size=16&seed=7"
    root = ensure_synthetic(spec)
    assert root.parent == data_dir
    files = sorted(p.relative_to(root) for p in root.rglob("*.png"))
    assert len(files) == 9 and (root / "dataset.json").is_file()
    first = {f: (root / f).read_bytes() for f in files}
    mtime = root.stat().st_mtime_ns
    assert ensure_synthetic(spec) == root and root.stat().st_mtime_ns == mtime  # cached, not rewritten
    # Same options in another cache: identical bytes.
    other = data_dir / "regenerated"
    synthetic_mod.write_synthetic(parse_spec(spec), other)
    assert {f: (other / f).read_bytes() for f in files} == first
    data = check_cls_dataset(spec)
    assert data["names"] == {0: "checker", 1: "disk", 2: "hstripes"}


def test_synthetic_crash_leaves_no_set(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    spec = "synthetic:classify?classes=2&train=4&val=2&size=8&seed=3"

    def crash(spec_: object, root: Path) -> None:
        (root / "train" / "checker").mkdir(parents=True)
        write_png(root / "train" / "checker" / "0.png")
        raise OSError("disk full")

    monkeypatch.setattr(synthetic_mod, "write_synthetic", crash)
    with pytest.raises(OSError, match="disk full"):
        ensure_synthetic(spec)
    name = parse_spec(spec).dirname
    assert not (data_dir / name).exists()
    assert not [p for p in data_dir.iterdir() if name in p.name]  # the temporary folder is gone too
    monkeypatch.undo()
    assert len(list(ensure_synthetic(spec).rglob("*.png"))) == 6


def _channel_means(ds: ClassificationDataset) -> tuple[torch.Tensor, torch.Tensor]:
    items = [ds[i] for i in range(len(ds))]
    return torch.stack([it["img"].mean((1, 2)) for it in items]), torch.tensor([it["cls"] for it in items])


def test_synthetic_needs_shape_not_mean_colour() -> None:
    """A nearest-centroid classifier on mean colour stays near chance; a tiny CNN learns the patterns."""
    from trainer_engine.nn.classification import ClassificationModel

    torch.manual_seed(0)
    data = check_cls_dataset(SMALL)
    args = SimpleNamespace(imgsz=32, auto_augment="none", erasing=0.0)
    train = ClassificationDataset(data["train"], args, augment=False, names=data["names"])
    val = ClassificationDataset(data["val"], args, names=data["names"])
    (xt, yt), (xv, yv) = _channel_means(train), _channel_means(val)
    centroids = torch.stack([xt[yt == c].mean(0) for c in range(data["nc"])])
    colour_acc = (torch.cdist(xv, centroids).argmin(1) == yv).float().mean().item()

    model = ClassificationModel(nc=data["nc"], verbose=False)
    opt = torch.optim.AdamW(model.parameters(), lr=0.003)
    loader = build_dataloader(
        ClassificationDataset(data["train"], args, augment=True, names=data["names"]), 32
    )
    for _ in range(3):
        for batch in loader:
            loss, _ = model(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        cnn_acc = (
            (model(torch.stack([val[i]["img"] for i in range(len(val))])).argmax(1) == yv).float().mean()
        )
    chance = 1 / data["nc"]
    assert colour_acc < chance + 0.15, colour_acc
    assert cnn_acc > max(0.6, colour_acc + 0.3), (cnn_acc, colour_acc)

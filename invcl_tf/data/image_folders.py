"""Image folders: listing (class subfolders, train/test or a hashed holdout), header checks
before training, and a split read by index through a manifest file and a lookup table.

A folder's file list lives in a manifest file on disk and a lookup table built from it, never
as a constant of a graph (700k paths as a constant break the 2 GB GraphDef limit).
"""

import concurrent.futures
import os
import shutil
import tempfile
import warnings
import weakref
import zlib

import numpy as np
import tensorflow as tf

from invcl_tf.errors import DataError
from invcl_tf.data import subsets
from invcl_tf.data.image_splits import IndexedSplit, decode

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_DECODABLE_FORMATS = {"PNG", "JPEG", "MPO", "BMP", "GIF"}  # MPO: the JPEG of many cameras
_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_HOLDOUT_BUCKETS = 10_000
_CHECK_CHUNK = 256
_LIMIT_SALTS = (subsets.LIMIT_TRAIN, subsets.LIMIT_TEST)  # train_size, test_size


def _fail(message):
    raise DataError(message)


class _FolderSplit(IndexedSplit):
    """Files listed in a manifest (one path a line) and read by index through a lookup table.

    The manifest's temporary folder goes when the split is garbage-collected, or at exit.
    """

    def __init__(self, paths, labels, decode_size):
        self.num_examples = len(paths)
        self.labels = labels
        self.decode_size = decode_size
        self._dir = tempfile.mkdtemp(prefix="invcl-images-")
        weakref.finalize(self, shutil.rmtree, self._dir, ignore_errors=True)
        self.manifest = os.path.join(self._dir, "manifest.txt")
        with open(self.manifest, "wb") as f:
            f.writelines(os.fsencode(path) + b"\n" for path in paths)
        # The table's serialised form is its initializer (the manifest's name), not its
        # contents, so datasets that use it stay small however many files there are.
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                self.manifest, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER, tf.string,
                tf.lookup.TextFileIndex.WHOLE_LINE, vocab_size=self.num_examples),
            default_value="")

    def _read(self, index):
        path = self._table.lookup(tf.cast(index, tf.int64))
        return decode(tf.io.read_file(path), self.decode_size)


def _scan(root):
    """Relative (``/``-separated) paths of the image files under ``root``, sorted.

    Follows symlinked folders (each real folder once) and skips hidden files and folders
    (``.``-prefixed: macOS ``._x.jpg`` shadows are not images).
    """
    found, seen = [], set()
    for top, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel_top = os.path.relpath(top, root)
        for name in files:
            if not name.startswith(".") and name.lower().endswith(EXTENSIONS):
                rel = name if rel_top == "." else os.path.join(rel_top, name)
                found.append(rel.replace(os.sep, "/"))
    return sorted(found)


def _class_of(rels, root, shown):
    """``(class per file or None, sorted class names)``; None, None when unlabelled."""
    nested = [r for r in rels if "/" in r]
    if not nested:
        return None, None
    if len(nested) != len(rels):
        flat = next(r for r in rels if "/" not in r)
        _fail(f"--config.dataset.path: {shown} mixes images directly in it ({flat}) with images "
              f"in subfolders ({nested[0]}); put every image in a class folder (labelled) or "
              f"all directly in the folder (unlabelled)")
    classes = [r.split("/", 1)[0] for r in rels]
    return classes, tuple(sorted(set(classes)))


def _indices(classes, names):
    lookup = {name: i for i, name in enumerate(names)}
    return np.array([lookup[c] for c in classes], np.int64)


def _in_holdout(rel, fraction):
    # crc32 of the path alone: a file keeps its split when other files come or go.
    bucket = zlib.crc32(os.fsencode(rel)) % _HOLDOUT_BUCKETS
    return bucket < fraction * _HOLDOUT_BUCKETS


def _channel_kind(path, shown):
    """'gray' or 'rgb': the channels TF will decode ``path`` to, from its header alone."""
    from PIL import Image  # deferred: only folder sources with check_files need PIL

    try:
        with warnings.catch_warnings():
            # Large images are legitimate here; PIL's bomb warning would only print.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                fmt, mode = image.format, image.mode
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        reason = (str(err).splitlines() or [type(err).__name__])[0]
        _fail(f"--config.dataset.path: {shown} is not a readable image ({reason}); remove or "
              f"replace it")
    if fmt not in _DECODABLE_FORMATS:
        _fail(f"--config.dataset.path: {shown} holds a {fmt} image despite its name; convert "
              f"it to PNG or JPEG")
    if fmt == "GIF":
        return "rgb"  # TF decodes every GIF to RGB
    if fmt == "BMP" and mode in ("P", "1"):
        # TF's BMP decoder reads palette indices as gray levels and rejects 1-bit files.
        _fail(f"--config.dataset.path: {shown} is a {'palette' if mode == 'P' else '1-bit'} "
              f"BMP, which TensorFlow cannot decode; convert it to PNG or 24-bit BMP")
    return "gray" if mode in _GRAY_MODES else "rgb"


def check_files(paths, shown):
    """Reads each file's header (no pixel decode) in parallel; raises DataError naming the
    first unreadable file, an undecodable format, or a grayscale/RGB mix.

    ``shown[i]`` is how ``paths[i]`` appears in messages. A file that is corrupt past its
    header (a truncated JPEG, say) passes and fails later, at decode time, with TF's error.
    """
    def kinds(start):
        return [_channel_kind(p, n) for p, n in zip(paths[start:start + _CHECK_CHUNK],
                                                    shown[start:start + _CHECK_CHUNK])]

    first = {}
    # Threads hide the latency of network filesystems; whole chunks per task keep their
    # overhead small on a local disk. map() yields in order, so an error names the first bad
    # file of the fixed order.
    with concurrent.futures.ThreadPoolExecutor(min(8, 2 * (os.cpu_count() or 1))) as pool:
        chunks = pool.map(kinds, range(0, len(paths), _CHECK_CHUNK))
        try:
            for start, chunk in zip(range(0, len(paths), _CHECK_CHUNK), chunks):
                for name, kind in zip(shown[start:], chunk):
                    first.setdefault(kind, name)
                    if len(first) == 2:
                        _fail(f"--config.dataset.path: {first['gray']} is grayscale but "
                              f"{first['rgb']} is RGB; grayscale sources must be all-grayscale "
                              f"or all-RGB (convert the files of one kind)")
        finally:
            pool.shutdown(cancel_futures=True)


def folder_source(dataset, decode_size):
    path = dataset.get("path", None)
    if not path:
        _fail("--config.dataset.path: not set; pass --config.dataset.path=DIR, the folder of "
              "images")
    if not os.path.exists(path):
        _fail(f"--config.dataset.path: {path} does not exist; pass the folder of images")
    if not os.path.isdir(path):
        _fail(f"--config.dataset.path: {path} is not a directory; pass the folder of images")
    root = os.path.abspath(path)
    exts = ", ".join(EXTENSIONS)
    train_root = os.path.join(root, "train")

    if os.path.isdir(train_root):
        test_root = os.path.join(root, "test")
        if not os.path.isdir(test_root):
            _fail(f"--config.dataset.path: {path} has a train/ folder but no test/ folder "
                  f"beside it; a train/ folder needs a test/ folder next to it")
        splits = []
        for sub, split_root in (("train", train_root), ("test", test_root)):
            rels = _scan(split_root)
            if not rels:
                _fail(f"--config.dataset.path: {path}/{sub} holds no image files ({exts})")
            classes, names = _class_of(rels, split_root, f"{path}/{sub}")
            splits.append((sub, [f"{sub}/{r}" for r in rels], classes, names))
        (_, _, _, train_names), (_, _, _, test_names) = splits
        if (train_names is None) != (test_names is None):
            labelled = "train" if train_names is not None else "test"
            _fail(f"--config.dataset.path: {path}/{labelled} has class folders but the other "
                  f"split has its images directly in it; lay out train/ and test/ alike")
        if train_names != test_names:
            only_train = sorted(set(train_names) - set(test_names))
            only_test = sorted(set(test_names) - set(train_names))
            _fail(f"--config.dataset.path: train/ and test/ have different class folders "
                  f"(only in train: {', '.join(only_train) or '-'}; only in test: "
                  f"{', '.join(only_test) or '-'}); give both the same class folders")
        class_names = train_names
        parts = [(rels, classes) for _, rels, classes, _ in splits]
    else:
        rels = _scan(root)
        if not rels:
            _fail(f"--config.dataset.path: no image files ({exts}) in {path} or its subfolders")
        classes, class_names = _class_of(rels, root, path)
        fraction = dataset.get("holdout_fraction", 0.1)
        held = [_in_holdout(r, fraction) for r in rels]
        parts = []
        for want in (False, True):
            keep = [i for i, h in enumerate(held) if h == want]
            if not keep:
                which = "test" if want else "train"
                _fail(f"--config.dataset.holdout_fraction: {fraction} leaves the {which} split "
                      f"of the {len(rels)} images in {path} empty; choose a fraction that "
                      f"leaves images on both sides, or add {path}/train and {path}/test")
            parts.append(([rels[i] for i in keep],
                          None if classes is None else [classes[i] for i in keep]))

    limits = (dataset.get("train_size", None), dataset.get("test_size", None))
    chosen = []
    for (rels, classes), limit, salt in zip(parts, limits, _LIMIT_SALTS):
        labels = None if classes is None else _indices(classes, class_names)
        keep = subsets.draw(len(rels), limit, labels, salt)
        chosen.append(([rels[i] for i in keep], None if labels is None else labels[keep]))
    for rels, _ in chosen:
        bad = next((r for r in rels if "\n" in r or "\r" in r), None)
        if bad is not None:
            _fail(f"--config.dataset.path: the file name {bad!r} holds a line break; rename it")
    if dataset.get("check_files", True):
        every = [r for rels, _ in chosen for r in rels]
        check_files([os.path.join(root, r) for r in every], [f"{path}/{r}" for r in every])
    train, test = (_FolderSplit([os.path.join(root, r) for r in rels], labels, decode_size)
                   for rels, labels in chosen)
    return train, test, class_names

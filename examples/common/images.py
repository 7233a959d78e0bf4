"""Image datasets shared by the examples, and the batching they need.

Images come back as float32 arrays of shape `[n, height, width, channels]`
with values in `[0, 1]`, labels as int32 arrays of shape `[n]`.

Fashion-MNIST, the offline default, is read from the original IDX files that
the Debian package `dataset-fashion-mnist` installs. Any other dataset is
read with `tfds.data_source` from a TensorFlow Datasets directory where it
has already been prepared in a random-access format (`array_record`), which
needs no TensorFlow. Nothing is downloaded, and a missing dataset is an error
that says how to get it, never a switch to fake data.

`make_batch_fn` cuts an array dataset into shuffled batches so that batch
`step` depends on `step` alone, which is what an exact resume after a kill
needs. `binarize` draws binary images with the pixel intensities as
Bernoulli probabilities (dynamic binarisation).
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_DIR_ENV = "DABJAX_FASHION_MNIST_DIR"

_FASHION_MNIST_FILES = {"train": "train", "test": "t10k"}
_FASHION_MNIST_CLASSES = 10

# IDX type codes (third byte of the magic number) and their big-endian dtype.
_IDX_DTYPES = {
  0x08: np.dtype(">u1"),
  0x09: np.dtype(">i1"),
  0x0B: np.dtype(">i2"),
  0x0C: np.dtype(">i4"),
  0x0D: np.dtype(">f4"),
  0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"

# Records read per `__getitems__` call from a TFDS data source.
_TFDS_CHUNK = 4096


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
  """Reads an array from an IDX file, raw or gzip-compressed.

  The file is decompressed when it starts with the gzip magic bytes,
  whatever its name. The whole file must be one IDX array: two zero bytes, a
  type code, the number of dimensions, one big-endian uint32 per dimension,
  then exactly as many big-endian values as the dimensions say.

  Args:
    path: the IDX file.

  Returns:
    The array, with the shape stored in the file and the native-endian form
    of its dtype (uint8, int8, int16, int32, float32 or float64).

  Raises:
    ValueError: if the file is not a complete, well-formed IDX array: a
      corrupt or truncated gzip stream, a wrong magic number, an unknown type
      code, or a size that does not match the dimensions.

  Example:
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as directory:
    ...   path = os.path.join(directory, "labels-idx1-ubyte.gz")
    ...   write_idx(path, np.array([3, 1, 4], np.uint8))
    ...   read_idx(path)
    array([3, 1, 4], dtype=uint8)
  """
  path = os.fspath(path)
  with open(path, "rb") as f:
    data = f.read()

  compressed = data[:2] == _GZIP_MAGIC
  if compressed:
    try:
      data = gzip.decompress(data)
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
      raise ValueError(
        f"read_idx: a gzip file must hold one complete gzip stream. {path} "
        f"is corrupt or truncated ({e}). Download or reinstall the file."
      ) from None

  if len(data) < 4 or data[0] != 0 or data[1] != 0:
    raise ValueError(
      "read_idx: an IDX file must start with two zero bytes, a type code and "
      f"a number of dimensions. {path} starts with {data[:4]!r}. Check that "
      "the file is an IDX file."
    )
  code, ndim = data[2], data[3]
  if code not in _IDX_DTYPES:
    known = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
    raise ValueError(
      f"read_idx: the IDX type code must be one of {known}. {path} has "
      f"0x{code:02X}. Check that the file is an IDX file."
    )
  if ndim == 0:
    raise ValueError(
      f"read_idx: an IDX array needs at least one dimension. {path} has 0. "
      "Check that the file is an IDX file."
    )

  header = 4 + 4 * ndim
  if len(data) < header:
    raise ValueError(
      f"read_idx: an IDX header with {ndim} dimensions takes {header} bytes. "
      f"{path} has {len(data)} bytes in all. The file is truncated."
    )
  shape = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, 4))
  dtype = _IDX_DTYPES[code]
  expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
  if len(data) != expected:
    raise ValueError(
      f"read_idx: an IDX array of shape {shape} and dtype {dtype.name} takes "
      f"{expected} bytes with its header. {path} holds {len(data)} bytes"
      f"{' once decompressed' if compressed else ''}. The file is "
      f"{'truncated' if len(data) < expected else 'followed by extra bytes'}."
    )

  flat = np.frombuffer(data, dtype, offset=header)
  return flat.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
  """Writes an array as an IDX file, gzip-compressed if `path` ends in `.gz`.

  This is the inverse of `read_idx`. Tests use it to build small stand-ins
  for the Fashion-MNIST directory, passed as `data_dir` to `load_images`.

  Args:
    path: the file to write.
    array: an array with at least one dimension and a dtype that IDX can
      store: uint8, int8, int16, int32, float32 or float64.

  Raises:
    ValueError: if `array` has no dimensions or a dtype IDX cannot store.
  """
  array = np.asarray(array)
  codes = {dtype.newbyteorder("="): code for code, dtype in _IDX_DTYPES.items()}
  if array.dtype not in codes or array.ndim == 0:
    raise ValueError(
      "write_idx: IDX stores arrays of one or more dimensions of uint8, int8, "
      f"int16, int32, float32 or float64. Got shape {array.shape} and dtype "
      f"{array.dtype}. Convert the array first."
    )

  code = codes[array.dtype]
  header = bytes([0, 0, code, array.ndim])
  header += np.asarray(array.shape, ">u4").tobytes()
  data = header + array.astype(_IDX_DTYPES[code]).tobytes()
  if os.fspath(path).endswith(".gz"):
    data = gzip.compress(data)
  with open(path, "wb") as f:
    f.write(data)


def load_images(
  name: str = "fashion_mnist",
  split: str = "train",
  data_dir: str | os.PathLike[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
  """Loads a whole split of an image classification dataset into memory.

  `name="fashion_mnist"` reads the original IDX files (`train-*` for the
  `"train"` split, `t10k-*` for `"test"`, gzipped or not) from `data_dir`,
  else from the directory named by the environment variable
  `DABJAX_FASHION_MNIST_DIR`, else from `/usr/share/datasets/fashion-mnist`
  where the Debian package `dataset-fashion-mnist` puts them.

  Any other name is a TensorFlow Datasets name (`"mnist"`, `"cifar10"`, ...)
  whose records have an `"image"` of uint8 `[height, width, channels]` and a
  `"label"`. It is read with `tfds.data_source(name, split=split,
  data_dir=data_dir, download=False)`, so it must have been prepared in the
  `array_record` format beforehand; `split` accepts the TFDS slicing syntax
  (`"train[:90%]"`). Without OpenCV, TFDS decodes each PNG with PIL, which
  took 0.23 ms per 28x28 image on one slow CPU core (14 s for 60000 images);
  `pip install opencv-python` makes TFDS decode faster.

  Args:
    name: `"fashion_mnist"` or the name of a prepared TFDS dataset.
    split: `"train"` or `"test"` for Fashion-MNIST; any TFDS split otherwise.
    data_dir: the directory that holds the IDX files (Fashion-MNIST) or the
      TFDS data directory (other names); `None` for the defaults above.

  Returns:
    `(images, labels)`: float32 images `[n, height, width, channels]` in
    `[0, 1]` (the uint8 values divided by 255) and int32 labels `[n]`, in
    the order of the files or of the data source.

  Raises:
    FileNotFoundError: if the dataset is not on this machine; the message
      says how to install or prepare it.
    ValueError: for an unknown Fashion-MNIST split, files or records that do
      not form a labelled image dataset (see `read_idx`), or a TFDS dataset
      prepared in a format without random access.
  """
  if name == "fashion_mnist":
    return _load_fashion_mnist(split, data_dir)
  return _load_tfds(name, split, data_dir)


def _load_fashion_mnist(split, data_dir):
  """Reads one Fashion-MNIST split from its IDX files."""
  if split not in _FASHION_MNIST_FILES:
    raise ValueError(
      f"load_images: the Fashion-MNIST split must be one of "
      f"{sorted(_FASHION_MNIST_FILES)}. Got {split!r}. Slice the arrays that "
      "load_images returns to make a validation set."
    )
  if data_dir is None:
    data_dir = os.environ.get(FASHION_MNIST_DIR_ENV) or FASHION_MNIST_DIR
  data_dir = os.fspath(data_dir)

  prefix = _FASHION_MNIST_FILES[split]
  arrays = {}
  for kind, ndim in (("images", 3), ("labels", 1)):
    stem = os.path.join(data_dir, f"{prefix}-{kind}-idx{ndim}-ubyte")
    path = next((p for p in (stem + ".gz", stem) if os.path.isfile(p)), None)
    if path is None:
      raise FileNotFoundError(
        f"load_images: Fashion-MNIST needs {stem}.gz or {stem}. Neither "
        f"exists. Install the files with `sudo apt-get install "
        f"dataset-fashion-mnist`, or pass data_dir (or set "
        f"{FASHION_MNIST_DIR_ENV}) to the directory that holds them."
      )
    array = read_idx(path)
    if array.dtype != np.uint8 or array.ndim != ndim:
      raise ValueError(
        f"load_images: Fashion-MNIST {kind} must be uint8 with {ndim} "
        f"dimensions. {path} holds {array.dtype} of shape {array.shape}. "
        "Check that the file is the Fashion-MNIST one."
      )
    arrays[kind] = array

  images, labels = arrays["images"], arrays["labels"]
  if len(images) != len(labels):
    raise ValueError(
      f"load_images: the Fashion-MNIST {split} split needs as many labels as "
      f"images. {data_dir} has {len(images)} images and {len(labels)} "
      "labels. Reinstall the files."
    )
  if labels.size and labels.max() >= _FASHION_MNIST_CLASSES:
    raise ValueError(
      f"load_images: Fashion-MNIST labels must lie in [0, "
      f"{_FASHION_MNIST_CLASSES}). The {split} labels in {data_dir} reach "
      f"{labels.max()}. Reinstall the files."
    )
  return _to_float(images[..., None]), labels.astype(np.int32)


def _load_tfds(name, split, data_dir):
  """Reads one split of a prepared TFDS dataset through `tfds.data_source`."""
  import tensorflow_datasets as tfds  # Slow to import; only this path uses it.

  try:
    source = tfds.data_source(
      name, split=split, data_dir=data_dir, download=False
    )
  except (
    tfds.core.DatasetNotFoundError,
    KeyError,
    NotImplementedError,
    FileNotFoundError,
  ):
    # TFDS reports a missing dataset with one of these, depending on
    # `data_dir` and the version; name the cause if it is one we recognise.
    _raise_if_not_prepared(tfds, name, data_dir)
    raise

  n = len(source)
  if n == 0:
    raise ValueError(
      f"load_images: a split must hold at least one record. {name!r} split "
      f"{split!r} is empty. Choose another split."
    )
  images = labels = None
  for start in range(0, n, _TFDS_CHUNK):
    keys = list(range(start, min(n, start + _TFDS_CHUNK)))
    if hasattr(source, "__getitems__"):
      records = source.__getitems__(keys)
    else:
      records = [source[k] for k in keys]
    for k, record in zip(keys, records, strict=True):
      image, label = _check_record(name, split, k, record, images)
      if images is None:
        images = np.empty((n, *image.shape), np.uint8)
        labels = np.empty((n,), np.int32)
      images[k] = image
      labels[k] = label
  return _to_float(images), labels


def _raise_if_not_prepared(tfds, name, data_dir):
  """Raises a clear error if `name` is absent or unreadable under data_dir."""
  from tensorflow_datasets.core import constants, file_adapters

  if data_dir is None:
    where = f"the default TFDS data_dir {constants.DATA_DIR}"
  else:
    where = os.fspath(data_dir)
  command = f"tfds build {name} --file_format=array_record"
  if data_dir is not None:
    command += f" --data_dir={os.fspath(data_dir)}"
  how = (
    f"Prepare it with `{command}` on a machine with TensorFlow and copy the "
    "data directory here, or pass the data_dir that holds it"
  )

  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except tfds.core.DatasetNotFoundError:
    raise FileNotFoundError(
      f"load_images: a TFDS dataset must be prepared before it is read. "
      f"{name!r} is neither prepared in {where} nor known to TFDS. {how}."
    ) from None
  if not builder.is_prepared():
    raise FileNotFoundError(
      f"load_images: a TFDS dataset must be prepared before it is read. "
      f"{name!r} is not prepared in {where}. {how}."
    ) from None

  file_format = builder.info.file_format
  if (
    file_format is not None
    and file_format not in file_adapters.FileFormat.with_random_access()
  ):
    raise ValueError(
      f"load_images: tfds.data_source needs a dataset prepared as "
      f"array_record or parquet. {name!r} in {builder.data_dir} is prepared "
      f"as {file_format.value}. Prepare it again with `{command}`."
    ) from None


def _check_record(name, split, key, record, images):
  """Returns a record's image and label after checking their form."""
  if not isinstance(record, dict) or not {"image", "label"} <= record.keys():
    found = sorted(record) if isinstance(record, dict) else type(record)
    raise ValueError(
      f"load_images: TFDS records must have an 'image' and a 'label'. "
      f"Record {key} of {name!r} split {split!r} has {found}. Choose a "
      "labelled image classification dataset."
    )
  image = np.asarray(record["image"])
  if image.dtype != np.uint8 or image.ndim != 3:
    raise ValueError(
      f"load_images: TFDS images must be uint8 [height, width, channels]. "
      f"Record {key} of {name!r} split {split!r} has {image.dtype} of shape "
      f"{image.shape}. Choose a dataset of 8-bit images."
    )
  if images is not None and image.shape != images.shape[1:]:
    raise ValueError(
      f"load_images: all images of a split must have one shape. Record "
      f"{key} of {name!r} split {split!r} has shape {image.shape}, the "
      f"first {images.shape[1:]}. Choose a dataset of fixed-size images."
    )
  return image, record["label"]


def _to_float(images):
  """Scales uint8 images to float32 in [0, 1]."""
  return images.astype(np.float32) / np.float32(255)


def make_batch_fn(
  data: Any,
  batch_size: int,
  *,
  seed: int,
  shuffle: bool = True,
) -> Callable[[int], Any]:
  """Makes a function from a step number to a batch of an array dataset.

  The examples are cut into `n // batch_size` batches per epoch; the last
  `n % batch_size` examples of each epoch's order are left out, so every
  batch has the same shape. With `shuffle`, epoch `e` visits the examples in
  a permutation drawn from `(seed, e)` alone, so batch `step` is a pure
  function of `step`: a run that restarts at step `s` sees exactly the
  batches it would have seen without the restart. Without `shuffle`, every
  epoch visits the examples in order.

  .. warning:: The permutations come from NumPy's PCG64 generator; NumPy
     does not promise the same permutations across its versions, so resume
     with the NumPy version that started the run.

  Args:
    data: a pytree of arrays with a common leading dimension `n` (for
      instance `(images, labels)`).
    batch_size: examples per batch, between 1 and `n`.
    seed: the seed of the epoch permutations.
    shuffle: whether to permute the examples in each epoch.

  Returns:
    `batch_fn(step)`, which takes a step number `>= 0` and returns a pytree
    with the structure of `data` whose leaves hold `batch_size` examples
    (NumPy arrays). It raises `ValueError` for a negative step.

  Raises:
    ValueError: if `data` has no leaves, leaves with different leading
      dimensions, or `batch_size` is not between 1 and `n`.

  Example:
    >>> x = np.arange(10)
    >>> batch_fn = make_batch_fn((x, -x), batch_size=4, seed=0)
    >>> a, b = batch_fn(3)
    >>> a.shape, bool((a == -b).all())
    ((4,), True)
    >>> bool((make_batch_fn(x, 4, seed=0)(3) == a).all())
    True
  """
  leaves, treedef = jax.tree.flatten(data)
  leaves = [np.asarray(leaf) for leaf in leaves]
  sizes = {
    jax.tree_util.keystr(path): np.shape(leaf)[0] if np.ndim(leaf) else None
    for path, leaf in jax.tree_util.tree_leaves_with_path(data)
  }
  if not leaves or len(set(sizes.values())) != 1 or None in sizes.values():
    raise ValueError(
      "make_batch_fn: data must be a pytree of arrays with one leading "
      f"dimension. Got leading dimensions {sizes or 'of no leaves'}. Pass "
      "arrays that hold the same number of examples."
    )
  n = leaves[0].shape[0]
  if not 1 <= batch_size <= n:
    raise ValueError(
      f"make_batch_fn: batch_size must be between 1 and the {n} examples. "
      f"Got {batch_size}. Pass a smaller batch_size or more data."
    )

  steps_per_epoch = n // batch_size
  cache = {}  # The permutation of the last epoch used.

  def batch_fn(step: int) -> Any:
    if step < 0:
      raise ValueError(
        f"make_batch_fn: a step must be >= 0. Got {step}. Count steps from 0."
      )
    epoch, i = divmod(int(step), steps_per_epoch)
    if not shuffle:
      order = np.arange(n)
    elif epoch in cache:
      order = cache[epoch]
    else:
      order = np.random.default_rng([seed, epoch]).permutation(n)
      cache.clear()
      cache[epoch] = order
    index = order[i * batch_size : (i + 1) * batch_size]
    return jax.tree.unflatten(treedef, [leaf[index] for leaf in leaves])

  return batch_fn


def binarize(key: jax.Array, images: jax.Array) -> jax.Array:
  """Draws binary images with the pixel intensities as probabilities.

  Each pixel is 1 with probability equal to its intensity and 0 otherwise,
  independently (dynamic binarisation). Call it with a new key every time an
  image is read, for instance `jax.random.fold_in(key, step)`, so that each
  epoch sees new samples and a resumed run the same ones. It works under
  `jit` and `vmap`.

  Args:
    key: a JAX PRNG key.
    images: floating-point intensities in `[0, 1]`, of any shape.

  Returns:
    An array of the shape and dtype of `images` holding 0s and 1s.

  Raises:
    TypeError: if `images` is not a floating-point array.

  Example:
    >>> x = jnp.array([0.0, 1.0, 1.0])
    >>> binarize(jax.random.key(0), x)
    Array([0., 1., 1.], dtype=float32)
  """
  dtype = jnp.result_type(images)
  if not jnp.issubdtype(dtype, jnp.floating):
    raise TypeError(
      "binarize: images must hold floating-point intensities in [0, 1]. Got "
      f"dtype {dtype}. Divide integer images by their maximum first."
    )
  return jax.random.bernoulli(key, images).astype(dtype)

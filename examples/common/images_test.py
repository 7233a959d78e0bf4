"""Tests for the shared image data loading of the examples."""

import gzip
import io
import json
import os
import shutil
import tempfile
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import tensorflow_datasets as tfds
from absl.testing import absltest, parameterized
from PIL import Image

from examples.common import images as images_lib

_FASHION_MNIST_FILES = [
  os.path.join(images_lib.FASHION_MNIST_DIR, f"{prefix}-{kind}-ubyte.gz")
  for prefix in ("train", "t10k")
  for kind in ("images-idx3", "labels-idx1")
]


def _write_fashion_mnist(
  directory, images, labels, suffix=".gz", split="train"
):
  """Writes a Fashion-MNIST-like split of IDX files into `directory`."""
  prefix = {"train": "train", "test": "t10k"}[split]
  images_lib.write_idx(
    os.path.join(directory, f"{prefix}-images-idx3-ubyte{suffix}"), images
  )
  images_lib.write_idx(
    os.path.join(directory, f"{prefix}-labels-idx1-ubyte{suffix}"), labels
  )


def _png(image):
  """Encodes a uint8 [height, width, channels] image as PNG bytes."""
  buffer = io.BytesIO()
  Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
    buffer, format="PNG"
  )
  return buffer.getvalue()


def _prepare_tfds(data_dir, images, labels, num_classes):
  """Prepares a TFDS dataset `dabjax_test_images` in array_record format.

  The PNG bytes are encoded here with PIL, since TFDS encodes arrays with
  TensorFlow; the reading side is the real one that `load_images` uses.
  """

  class DabjaxTestImages(
    tfds.core.GeneratorBasedBuilder, skip_registration=True
  ):
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
      features = tfds.features.FeaturesDict(
        {
          "image": tfds.features.Image(shape=images.shape[1:]),
          "label": tfds.features.ClassLabel(num_classes=num_classes),
        }
      )
      return tfds.core.DatasetInfo(builder=self, features=features)

    def _split_generators(self, dl_manager):
      del dl_manager
      return {"train": self._generate_examples()}

    def _generate_examples(self):
      for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        yield i, {"image": _png(image), "label": int(label)}

  builder = DabjaxTestImages(data_dir=data_dir, file_format="array_record")
  builder.download_and_prepare()
  return "dabjax_test_images"


def _as_data_source_fn(splits):
  """A `mock_data` replacement for `as_data_source` serving `splits`."""

  def as_data_source(self, split, **kwargs):
    del self, kwargs
    return splits[split]

  return as_data_source


class TestCase(parameterized.TestCase):
  def tempdir(self):
    """A fresh directory, removed after the test (pytest parses no flags)."""
    directory = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, directory)
    return directory


class ReadIdxTest(TestCase):
  def _path(self, name="a-idx"):
    return os.path.join(self.tempdir(), name)

  def test_reads_big_endian_values_written_by_hand(self):
    path = self._path()
    with open(path, "wb") as f:
      f.write(
        b"\x00\x00\x0b\x02\x00\x00\x00\x01\x00\x00\x00\x02\x01\x02\xff\xfe"
      )

    array = images_lib.read_idx(path)

    np.testing.assert_array_equal(array, np.array([[258, -2]], np.int16))
    self.assertEqual(array.dtype, np.dtype("int16"))

  @parameterized.product(
    dtype=["uint8", "int8", "int16", "int32", "float32", "float64"],
    suffix=["", ".gz"],
  )
  def test_round_trip(self, dtype, suffix):
    array = (np.arange(24).reshape(2, 3, 4) - 7).astype(dtype)
    path = self._path("x-idx3-ubyte" + suffix)

    images_lib.write_idx(path, array)
    result = images_lib.read_idx(path)

    np.testing.assert_array_equal(result, array)
    self.assertEqual(result.dtype, array.dtype)
    self.assertTrue(result.flags.writeable)

  def test_gzip_is_detected_by_content_not_name(self):
    path = self._path("labels-idx1-ubyte")
    header = b"\x00\x00\x08\x01\x00\x00\x00\x03"
    with open(path, "wb") as f:
      f.write(gzip.compress(header + b"\x07\x08\x09"))

    np.testing.assert_array_equal(images_lib.read_idx(path), [7, 8, 9])

  @parameterized.named_parameters(
    ("raw", "", r"holds 39 bytes\. The file is truncated"),
    ("gzip", ".gz", r"holds 39 bytes once decompressed\. The file is trunc"),
  )
  def test_truncated_data_is_an_error(self, suffix, message):
    path = self._path("x" + suffix)
    images_lib.write_idx(path, np.zeros((2, 3, 4), np.uint8))
    with open(path, "rb") as f:
      data = f.read()
    if suffix:
      data = gzip.compress(gzip.decompress(data)[:-1])
    with open(path, "wb") as f:
      f.write(data if suffix else data[:-1])

    with self.assertRaisesRegex(
      ValueError,
      r"read_idx: an IDX array of shape \(2, 3, 4\) and dtype "
      r"uint8 takes 40 bytes with its header\. .*" + message,
    ):
      images_lib.read_idx(path)

  def test_extra_bytes_are_an_error(self):
    path = self._path()
    images_lib.write_idx(path, np.zeros((5,), np.int32))
    with open(path, "ab") as f:
      f.write(b"\x00")

    with self.assertRaisesRegex(
      ValueError,
      r"takes 28 bytes .* holds 29 bytes\. The file is followed "
      "by extra bytes",
    ):
      images_lib.read_idx(path)

  @parameterized.named_parameters(
    ("wrong_magic", b"\x01\x00\x08\x01", "must start with two zero bytes"),
    ("too_short", b"\x00\x00", "must start with two zero bytes"),
    ("type_code", b"\x00\x00\x0a\x01", "type code must be one of .* has 0x0A"),
    ("no_dimension", b"\x00\x00\x08\x00", "needs at least one dimension"),
    ("header", b"\x00\x00\x08\x03\x00\x00", r"takes 16 bytes\. .* has 6 byt"),
  )
  def test_bad_header_is_an_error(self, data, message):
    path = self._path()
    with open(path, "wb") as f:
      f.write(data)

    with self.assertRaisesRegex(ValueError, "read_idx: .*" + message):
      images_lib.read_idx(path)

  @parameterized.named_parameters(
    ("cut", lambda data: data[: len(data) // 2]),
    ("bad_crc", lambda data: data[:-8] + bytes(8)),
    ("bad_deflate", lambda data: data[:10] + b"\xff" * 8 + data[18:]),
  )
  def test_broken_gzip_is_an_error(self, damage):
    path = self._path("x.gz")
    images_lib.write_idx(path, np.arange(1000, dtype=np.int32))
    with open(path, "rb") as f:
      data = f.read()
    with open(path, "wb") as f:
      f.write(damage(data))

    with self.assertRaisesRegex(
      ValueError,
      "read_idx: a gzip file must hold one complete gzip stream. "
      ".* is corrupt or truncated",
    ):
      images_lib.read_idx(path)

  @parameterized.named_parameters(
    ("scalar", np.uint8(3)),
    ("int64", np.zeros(3, np.int64)),
    ("bool", np.zeros(3, bool)),
  )
  def test_write_rejects_what_idx_cannot_store(self, array):
    with self.assertRaisesRegex(ValueError, "write_idx: IDX stores arrays"):
      images_lib.write_idx(self._path(), array)


class FashionMnistTest(TestCase):
  def setUp(self):
    super().setUp()
    self.directory = self.tempdir()
    self.images = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5) * 4
    self.labels = np.array([9, 0, 4], np.uint8)

  @parameterized.parameters("", ".gz")
  def test_reads_scaled_images_and_labels(self, suffix):
    _write_fashion_mnist(self.directory, self.images, self.labels, suffix)

    images, labels = images_lib.load_images(data_dir=self.directory)

    self.assertEqual(images.dtype, np.float32)
    self.assertEqual(images.shape, (3, 4, 5, 1))
    np.testing.assert_array_equal(
      images[..., 0], self.images.astype(np.float32) / np.float32(255)
    )
    self.assertEqual(labels.dtype, np.int32)
    np.testing.assert_array_equal(labels, [9, 0, 4])

  def test_test_split_reads_t10k_files(self):
    _write_fashion_mnist(self.directory, self.images, self.labels)
    _write_fashion_mnist(
      self.directory, self.images[:1], self.labels[:1], split="test"
    )

    images, labels = images_lib.load_images(
      "fashion_mnist", "test", self.directory
    )

    self.assertEqual(images.shape, (1, 4, 5, 1))
    np.testing.assert_array_equal(labels, [9])

  def test_environment_variable_names_the_directory(self):
    _write_fashion_mnist(self.directory, self.images, self.labels)

    env = {images_lib.FASHION_MNIST_DIR_ENV: self.directory}
    with mock.patch.dict(os.environ, env):
      _, labels = images_lib.load_images()

    np.testing.assert_array_equal(labels, [9, 0, 4])

  def test_data_dir_overrides_environment_variable(self):
    _write_fashion_mnist(self.directory, self.images, self.labels)

    env = {images_lib.FASHION_MNIST_DIR_ENV: "/nonexistent"}
    with mock.patch.dict(os.environ, env):
      _, labels = images_lib.load_images(data_dir=self.directory)

    np.testing.assert_array_equal(labels, [9, 0, 4])

  def test_missing_files_name_the_debian_package(self):
    missing = os.path.join(self.directory, "nothing")

    with self.assertRaisesRegex(
      FileNotFoundError,
      r"load_images: Fashion-MNIST needs .*nothing/train-images-idx3-ubyte"
      r"\.gz or .* Neither exists\. Install the files with `sudo apt-get "
      r"install dataset-fashion-mnist`, or pass data_dir \(or set "
      r"DABJAX_FASHION_MNIST_DIR\)",
    ):
      images_lib.load_images(data_dir=missing)

  def test_default_directory_is_the_debian_one(self):
    env = {images_lib.FASHION_MNIST_DIR_ENV: ""}
    with (
      mock.patch.dict(os.environ, env),
      mock.patch.object(images_lib, "FASHION_MNIST_DIR", self.directory),
      self.assertRaisesRegex(FileNotFoundError, self.directory),
    ):
      images_lib.load_images()

  def test_count_mismatch_is_an_error(self):
    _write_fashion_mnist(self.directory, self.images, self.labels[:2])

    with self.assertRaisesRegex(
      ValueError, "needs as many labels as images. .* has 3 images and 2 lab"
    ):
      images_lib.load_images(data_dir=self.directory)

  def test_label_out_of_range_is_an_error(self):
    _write_fashion_mnist(self.directory, self.images, self.labels + 1)

    with self.assertRaisesRegex(
      ValueError, r"labels must lie in \[0, 10\)\. .* reach 10"
    ):
      images_lib.load_images(data_dir=self.directory)

  def test_wrong_array_is_an_error(self):
    _write_fashion_mnist(
      self.directory, self.images.astype(np.int16), self.labels
    )

    with self.assertRaisesRegex(
      ValueError,
      r"images must be uint8 with 3 dimensions\. .* holds int16 of shape "
      r"\(3, 4, 5\)",
    ):
      images_lib.load_images(data_dir=self.directory)

  def test_unknown_split_is_an_error(self):
    with self.assertRaisesRegex(
      ValueError, r"split must be one of \['test', 'train'\]. Got 'valid'"
    ):
      images_lib.load_images(split="valid", data_dir=self.directory)

  @absltest.skipUnless(
    all(os.path.isfile(path) for path in _FASHION_MNIST_FILES),
    "needs the Debian package dataset-fashion-mnist",
  )
  def test_reads_the_installed_dataset(self):
    for split, size in (("train", 60000), ("test", 10000)):
      images, labels = images_lib.load_images(
        split=split, data_dir=images_lib.FASHION_MNIST_DIR
      )

      self.assertEqual(images.shape, (size, 28, 28, 1))
      self.assertEqual(images.dtype, np.float32)
      self.assertEqual((images.min(), images.max()), (0.0, 1.0))
      np.testing.assert_array_equal(np.bincount(labels), [size // 10] * 10)


class TfdsTest(TestCase):
  @parameterized.parameters(1, 3)
  def test_reads_a_prepared_dataset(self, channels):
    data_dir = self.tempdir()
    rng = np.random.default_rng(channels)
    expected = rng.integers(0, 256, (10, 4, 3, channels), dtype=np.uint8)
    expected[:, 0, 0, 0] = np.arange(10)  # Identifies each example.
    name = _prepare_tfds(data_dir, expected, np.arange(10) % 3, 3)

    # A small chunk makes the read cross `__getitems__` chunk boundaries.
    with mock.patch.object(images_lib, "_TFDS_CHUNK", 4):
      images, labels = images_lib.load_images(name, "train", data_dir)

    # TFDS shuffles the records when it prepares them: sort them back.
    order = np.argsort(images[:, 0, 0, 0])
    np.testing.assert_array_equal(
      images[order], expected.astype(np.float32) / np.float32(255)
    )
    self.assertEqual(images.dtype, np.float32)
    np.testing.assert_array_equal(labels[order], np.arange(10) % 3)
    self.assertEqual(labels.dtype, np.int32)

  def test_split_slicing_is_passed_to_tfds(self):
    data_dir = self.tempdir()
    expected = np.zeros((10, 2, 2, 1), np.uint8)
    name = _prepare_tfds(data_dir, expected, np.zeros(10), 2)

    images, labels = images_lib.load_images(name, "train[:30%]", data_dir)

    self.assertEqual(images.shape, (3, 2, 2, 1))
    self.assertEqual(labels.shape, (3,))

  def test_reads_through_mock_data_with_a_data_source_fn(self):
    records = [
      {"image": np.full((2, 2, 3), 51 * i, np.uint8), "label": i}
      for i in range(3)
    ]
    with tfds.testing.mock_data(
      as_data_source_fn=_as_data_source_fn({"test": records})
    ):
      images, labels = images_lib.load_images("cifar10", "test")

    np.testing.assert_allclose(images[:, 0, 0, 0], [0.0, 0.2, 0.4], rtol=1e-6)
    self.assertEqual(images.shape, (3, 2, 2, 3))
    np.testing.assert_array_equal(labels, [0, 1, 2])

  def test_default_mock_data_cannot_serve_getitems(self):
    """Pins a TFDS 4.9.10 limitation: use `as_data_source_fn` instead.

    `mock_data` sets `__getitems__` on a MagicMock, which does not treat it
    as a special method, so the call misses its `self` argument.
    """
    with tfds.testing.mock_data(num_examples=3):
      source = tfds.data_source("mnist", split="train", download=False)
      self.assertEqual(source[0]["image"].shape, (28, 28, 1))
      with self.assertRaisesRegex(TypeError, "record_keys"):
        images_lib.load_images("mnist", "train")

  @parameterized.named_parameters(
    ("no_label", [{"image": np.zeros((2, 2, 1), np.uint8)}], "must have an"),
    (
      "float",
      [{"image": np.zeros((2, 2, 1), np.float32), "label": 0}],
      r"must be uint8 \[height, width, channels\]\. Record 0 .* float32",
    ),
    (
      "two_dimensions",
      [{"image": np.zeros((2, 2), np.uint8), "label": 0}],
      r"shape \(2, 2\)",
    ),
    (
      "shapes",
      [
        {"image": np.zeros((2, 2, 1), np.uint8), "label": 0},
        {"image": np.zeros((2, 3, 1), np.uint8), "label": 0},
      ],
      r"one shape\. Record 1 .* has shape \(2, 3, 1\), the first \(2, 2, 1\)",
    ),
    ("empty", [], "at least one record"),
  )
  def test_bad_records_are_an_error(self, records, message):
    with (
      tfds.testing.mock_data(
        as_data_source_fn=_as_data_source_fn({"train": records})
      ),
      self.assertRaisesRegex(ValueError, "load_images: .*" + message),
    ):
      images_lib.load_images("mnist", "train")

  def test_unknown_dataset_names_the_build_command(self):
    data_dir = self.tempdir()

    with self.assertRaisesRegex(
      FileNotFoundError,
      "'no_such_dataset' is neither prepared in .* nor known to TFDS. "
      "Prepare it with `tfds build no_such_dataset --file_format=array_record "
      f"--data_dir={data_dir}` on a machine with TensorFlow",
    ):
      images_lib.load_images("no_such_dataset", data_dir=data_dir)

  def test_unprepared_dataset_names_the_build_command(self):
    data_dir = self.tempdir()

    with self.assertRaisesRegex(
      FileNotFoundError,
      f"'mnist' is not prepared in {data_dir}. Prepare it with `tfds build "
      f"mnist --file_format=array_record --data_dir={data_dir}`",
    ):
      images_lib.load_images("mnist", data_dir=data_dir)

  def test_unprepared_dataset_in_default_data_dir(self):
    # TFDS reports this case with a KeyError rather than NotImplementedError.
    data_dir = self.tempdir()

    with (
      mock.patch.object(tfds.core.constants, "DATA_DIR", data_dir),
      self.assertRaisesRegex(
        FileNotFoundError,
        f"'mnist' is not prepared in the default TFDS data_dir {data_dir}. "
        "Prepare it with `tfds build mnist --file_format=array_record` on",
      ),
    ):
      images_lib.load_images("mnist")

  def test_dataset_without_random_access_names_the_build_command(self):
    data_dir = self.tempdir()
    name = _prepare_tfds(data_dir, np.zeros((2, 2, 2, 1), np.uint8), [0, 1], 2)
    # Without TensorFlow no tfrecord dataset can be written: relabel this one.
    info_path = os.path.join(data_dir, name, "1.0.0", "dataset_info.json")
    with open(info_path) as f:
      info = json.load(f)
    info["fileFormat"] = "tfrecord"
    with open(info_path, "w") as f:
      json.dump(info, f)

    with self.assertRaisesRegex(
      ValueError,
      "needs a dataset prepared as array_record or parquet. .* is prepared as "
      f"tfrecord. Prepare it again with `tfds build {name} "
      "--file_format=array_record",
    ):
      images_lib.load_images(name, data_dir=data_dir)


class MakeBatchFnTest(TestCase):
  def setUp(self):
    super().setUp()
    self.x = np.arange(10)
    self.data = {"x": self.x, "y": (self.x * 10).reshape(10, 1)}

  def test_batch_is_a_pure_function_of_the_step(self):
    batch_fn = images_lib.make_batch_fn(self.data, 3, seed=7)
    steps = [5, 0, 4, 5, 12, 1, 5]
    first = [batch_fn(step)["x"] for step in steps]
    # A fresh function stands for a run restarted after a kill.
    resumed = images_lib.make_batch_fn(self.data, 3, seed=7)

    for step, batch in zip(steps, first, strict=True):
      np.testing.assert_array_equal(resumed(step)["x"], batch)
    np.testing.assert_array_equal(first[0], first[3])

  def test_each_epoch_is_a_permutation_without_the_remainder(self):
    batch_fn = images_lib.make_batch_fn(self.data, 3, seed=0)

    epochs = [
      np.concatenate([batch_fn(3 * epoch + i)["x"] for i in range(3)])
      for epoch in range(4)
    ]

    for seen in epochs:
      self.assertLen(np.unique(seen), 9)
    self.assertLen({tuple(seen) for seen in epochs}, 4)

  def test_leaves_stay_aligned(self):
    batch = images_lib.make_batch_fn(self.data, 4, seed=1)(2)

    self.assertEqual(batch["y"].shape, (4, 1))
    np.testing.assert_array_equal(batch["y"][:, 0], batch["x"] * 10)

  def test_seeds_give_different_orders(self):
    a = images_lib.make_batch_fn(self.x, 5, seed=0)(0)
    b = images_lib.make_batch_fn(self.x, 5, seed=1)(0)

    self.assertFalse(np.array_equal(a, b))

  def test_without_shuffle_batches_are_in_order(self):
    batch_fn = images_lib.make_batch_fn(self.x, 4, seed=0, shuffle=False)

    np.testing.assert_array_equal(batch_fn(1), [4, 5, 6, 7])
    np.testing.assert_array_equal(batch_fn(2), [0, 1, 2, 3])

  @parameterized.named_parameters(
    ("mismatch", (np.zeros(3), np.zeros(4)), 1, r"\{'\[0\]': 3, '\[1\]': 4\}"),
    ("empty", (), 1, "of no leaves"),
    ("scalar", np.float32(1), 1, "None"),
    ("zero", np.zeros(3), 0, "between 1 and the 3 examples. Got 0"),
    ("too_big", np.zeros(3), 4, "between 1 and the 3 examples. Got 4"),
  )
  def test_bad_arguments_are_an_error(self, data, batch_size, message):
    with self.assertRaisesRegex(ValueError, "make_batch_fn: .*" + message):
      images_lib.make_batch_fn(data, batch_size, seed=0)

  def test_negative_step_is_an_error(self):
    batch_fn = images_lib.make_batch_fn(self.x, 2, seed=0)

    with self.assertRaisesRegex(ValueError, "step must be >= 0. Got -1"):
      batch_fn(-1)


class BinarizeTest(TestCase):
  @parameterized.parameters(False, True)
  def test_frequencies_match_intensities(self, use_jit):
    binarize = jax.jit(images_lib.binarize) if use_jit else images_lib.binarize
    p = jnp.array([0.0, 0.1, 0.5, 0.9, 1.0], jnp.float32)
    images = jnp.broadcast_to(p, (20000, 5))

    samples = binarize(jax.random.key(0), images)

    self.assertEqual(samples.dtype, jnp.float32)
    self.assertEqual(samples.shape, (20000, 5))
    np.testing.assert_array_equal(np.unique(samples), [0.0, 1.0])
    # Five standard errors of a frequency at p = 0.5 over 20000 draws.
    np.testing.assert_allclose(samples.mean(axis=0), p, atol=0.018)
    np.testing.assert_array_equal(samples[:, 0], 0.0)
    np.testing.assert_array_equal(samples[:, 4], 1.0)

  def test_same_key_same_sample_new_key_new_sample(self):
    images = jnp.full((20000, 5), 0.5)  # The shape above: no new compile.
    key = jax.random.key(3)

    first = images_lib.binarize(key, images)
    again = images_lib.binarize(key, images)
    other = images_lib.binarize(jax.random.fold_in(key, 1), images)

    np.testing.assert_array_equal(first, again)
    self.assertGreater(int((first != other).sum()), 45000)

  def test_keeps_the_floating_dtype(self):
    images = jnp.full((4,), 0.5, jnp.bfloat16)

    self.assertEqual(
      images_lib.binarize(jax.random.key(0), images).dtype, jnp.bfloat16
    )

  def test_integer_images_are_an_error(self):
    with self.assertRaisesRegex(
      TypeError, "binarize: images must hold floating-point .* Got dtype uint8"
    ):
      images_lib.binarize(jax.random.key(0), np.zeros(3, np.uint8))


if __name__ == "__main__":
  absltest.main()

"""The README's example runs as written and does what it says."""

import contextlib
import io
import pathlib
import re

from absl.testing import absltest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


class ReadmeTest(absltest.TestCase):
  def test_example_learns_every_bit(self):
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    lines = [line for line in code.splitlines() if line.strip()]
    self.assertLessEqual(len(lines), 25)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
      exec(compile(code, str(README), "exec"), {})
    accuracy = float(re.search(r"([\d.]+)%", out.getvalue()).group(1))
    self.assertGreaterEqual(accuracy, 99.0)


if __name__ == "__main__":
  absltest.main()

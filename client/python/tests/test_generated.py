"""The checked-in generated modules (src/tributary/v1) are what generate.sh
makes from proto/ with the pinned grpcio-tools: regenerated into a temporary
directory and compared byte for byte."""

from __future__ import annotations

import filecmp
import os
import pathlib
import subprocess
import sys
import tempfile
import unittest

HERE = pathlib.Path(__file__).resolve().parents[1]
CHECKED_IN = HERE / "src" / "tributary" / "v1"
PROTO = HERE.parents[1] / "proto" / "tributary" / "v1"


class GeneratedTest(unittest.TestCase):
    @unittest.skipUnless(PROTO.is_dir(), "not in the Tributary repository (no proto/)")
    def test_the_generated_modules_are_up_to_date(self) -> None:
        try:
            import grpc_tools  # noqa: F401
        except ImportError:
            self.fail("grpcio-tools is not installed: pip install -r client/python/requirements.txt")
        with tempfile.TemporaryDirectory() as out:
            subprocess.run(
                ["bash", str(HERE / "generate.sh"), out],
                check=True,
                capture_output=True,
                env=_python_env(),
            )
            fresh = pathlib.Path(out) / "tributary" / "v1"
            generated = sorted(p.name for p in fresh.iterdir())
            checked_in = sorted(p.name for p in CHECKED_IN.iterdir() if p.name != "__init__.py" and p.is_file())
            self.assertEqual(checked_in, generated, "files differ; run client/python/generate.sh")
            _, mismatch, errors = filecmp.cmpfiles(fresh, CHECKED_IN, generated, shallow=False)
            self.assertEqual(
                mismatch + errors,
                [],
                "out of date with proto/ (or another grpcio-tools than requirements.txt pins); "
                "run client/python/generate.sh",
            )


def _python_env() -> dict[str, str]:
    """PATH with this interpreter first, so generate.sh's python3 is this one."""
    env = dict(os.environ)
    env["PATH"] = f"{pathlib.Path(sys.executable).parent}:{env.get('PATH', '')}"
    return env


if __name__ == "__main__":
    unittest.main()

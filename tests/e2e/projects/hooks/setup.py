import os

from setuptools import Extension, setup

# Set by cibuildwheel's `environment` option (pyproject.toml); refusing to build without
# it proves that the option reached the build.
greeting = os.environ.get("XARCH_HOOKS_GREETING")
if not greeting:
    raise SystemExit("XARCH_HOOKS_GREETING is not set: the `environment` option did not apply")

setup(
    ext_modules=[
        Extension(
            "xarch_sample_hooks._hooks",
            ["src/xarch_sample_hooks/_hooks.c"],
            define_macros=[("XARCH_HOOKS_GREETING", '"' + greeting.replace('"', "") + '"')],
        )
    ]
)

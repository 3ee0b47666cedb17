"""xarch's benchmarks (`invoke bench`): emulation overhead per helper image (for an
image with native compiler leaves: emulated, accelerated and native side by side),
QEMU settings against the pinned default, the toolkit's own overhead, image sizes.

Part of the package (the workloads are generated, the timer's C source is package data),
so `xarch bench` works from a plain `pip install`; the `bench` task in
src/xarch/cli/tasks.py calls :func:`xarch.bench.bench.bench`.
"""

"""xarch's benchmarks (`invoke bench`): emulation overhead per helper image, QEMU
settings against the pinned default, the toolkit's own overhead, image sizes.

Lives beside the package (a checkout is needed: the workloads and the timer's C
source are here) and is imported by the `bench` task in src/xarch/tasks.py.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("xarch_sample_cext._speedups", ["src/xarch_sample_cext/_speedups.c"])])

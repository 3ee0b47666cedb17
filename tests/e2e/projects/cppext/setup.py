from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "xarch_sample_cppext._words",
            ["src/xarch_sample_cppext/_words.cpp"],
            language="c++",
            extra_compile_args=["-std=c++11"],
        )
    ]
)

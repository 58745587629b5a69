"""Ships the top-level ``configs/`` folder inside the wheel as ``genlab.configs``."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["genlab", "genlab.*"]), "genlab.configs"],
    package_dir={"genlab.configs": "configs"},
)

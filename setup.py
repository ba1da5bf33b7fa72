# A thin shim for tools and habits that look for setup.py (`python setup.py
# develop`, OpenMMLab-style layouts). Everything (name, version from
# agvm_mm.__version__, dependencies, extras, license) is in pyproject.toml,
# which setuptools >= 77 reads here as it does for `pip install .`.
from setuptools import setup

setup()

"""Package layout that pyproject.toml cannot express statically.

The Jinja templates and static assets live in the top-level ``templates/`` folder of the
repository but are installed as the ``etmf.ui`` package, so that a non-editable
``pip install .`` serves styled pages.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["etmf", "etmf.*", "ctms", "ctms.*", "storage", "storage.*"])
    + ["etmf.ui"],
    package_dir={"etmf.ui": "templates"},
)

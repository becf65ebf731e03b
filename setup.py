"""Packaging detail pyproject.toml cannot say: the top-level ``conf/`` folder installs as the
``search.conf`` package, so an installed (non-editable) ``python -m search`` finds its configs
while the checkout keeps ``conf/`` at the top (package data, *.yaml included, is in pyproject.toml)."""

from setuptools import find_namespace_packages, find_packages, setup

CONF = ["search.conf"] + [f"search.conf.{name}" for name in find_namespace_packages("conf")]

setup(
    packages=find_packages(include=["spaces*", "search*", "latency_models*", "tasks*"]) + CONF,
    package_dir={"search.conf": "conf"},
)

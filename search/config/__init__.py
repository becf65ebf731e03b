"""The typed config boundary: Hydra structured-config schemas under every YAML in conf/.

:func:`register` puts them in Hydra's ConfigStore; each YAML names its schema in its defaults
list, so an unknown key or a value of the wrong type fails when the config is composed, and each
default lives in one place (the YAML, or the schema where no YAML sets it).
"""

from search.config.schema import register

register()  # importing the package is enough for hydra.compose to find the schemas

__all__ = ["register"]

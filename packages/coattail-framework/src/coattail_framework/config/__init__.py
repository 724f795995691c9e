"""Configuration: the validated model and the loader that merges YAML, SSM and environment."""

from coattail_framework.config.loader import ConfigLoader, load_config
from coattail_framework.config.model import CoattailConfig
from coattail_framework.config.symbols import SymbolCatalog

__all__ = ["CoattailConfig", "ConfigLoader", "SymbolCatalog", "load_config"]

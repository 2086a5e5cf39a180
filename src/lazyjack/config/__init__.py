"""Configuration: reading the YAML file, validating it, and deriving the address plan."""

from __future__ import annotations

from pathlib import Path

from lazyjack.config.model import Config


def load_config(path: str | Path, *, host: str | None = None, require_token: bool = True) -> Config:
    """Read, parse and validate a configuration file (ConfigError lists every problem)."""
    from lazyjack.config.load import read_config
    from lazyjack.config.rules import validate

    return validate(read_config(path), host=host, require_token=require_token)


__all__ = ["Config", "load_config"]

"""Configuration: reading the YAML file, validating it, and deriving the address plan."""

from __future__ import annotations

from pathlib import Path

from lazyjack.config.model import Config


def load_config(path: str | Path, *, host: str | None = None, require_token: bool = True,
                data: bytes | None = None) -> Config:
    """Read, parse and validate a configuration file (ConfigError lists every problem).

    With `data`, those bytes are the file's contents (`--config -`: the config came on stdin).
    """
    from lazyjack.config.load import parse_config, read_config
    from lazyjack.config.rules import validate

    source = read_config(path) if data is None else parse_config(data, name=str(path))
    return validate(source, host=host, require_token=require_token)


__all__ = ["Config", "load_config"]

"""Errors raised by the framework. Each names the thing that is wrong and how to fix it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import ValidationError


class CoattailError(Exception):
    """Base of every error the framework raises on purpose."""


class ConfigError(CoattailError):
    """A configuration value is missing or invalid; the message names the key path."""

    @classmethod
    def from_validation(
        cls,
        error: ValidationError,
        *,
        prefix: Sequence[str] = (),
        source: Callable[[tuple[str, ...]], str] | None = None,
    ) -> ConfigError:
        """One line per invalid value: ``<source>: <key.path> <reason>, got <value>``."""
        lines = []
        for problem in error.errors():
            path = tuple(prefix) + tuple(str(part) for part in problem["loc"])
            origin = source(path) if source else "configuration"
            shown = problem["type"] != "missing" and not isinstance(problem["input"], dict)
            got = f", got {problem['input']!r}" if shown else ""
            message = problem["msg"][:1].lower() + problem["msg"][1:]
            lines.append(f"{origin}: {'.'.join(path)} {message}{got}")
        return cls("\n".join(lines))


class PluginError(CoattailError):
    """A plugin is missing, failed to import, or does not honour its contract."""

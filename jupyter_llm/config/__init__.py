"""The configuration: models.yaml read, checked and turned into frozen dataclasses.

The pool never sees YAML. ``load_config`` reads the file (``files.py``); ``parse_config``
checks every key against the rule tables (``rules.py``) and builds a ``Config`` of the
dataclasses in ``settings.py``. Anything wrong is one ``ConfigError`` that names the file,
the key path (``models[1].params.block_size``) and what was expected.
"""

from __future__ import annotations

from . import files, settings
from .files import *  # noqa: F403
from .parse import parse_config
from .settings import *  # noqa: F403

__all__ = [*files.__all__, *settings.__all__, "parse_config"]

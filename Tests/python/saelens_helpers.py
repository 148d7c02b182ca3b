"""Skips (with the reason) the tests that need sae-lens and the nsae_saelens package where they cannot be imported."""
import importlib

import pytest


def require_nsae_saelens():
    """(nsae_saelens, sae_lens, torch), or a module-level skip naming what failed to import."""
    modules = []
    for name in ("torch", "sae_lens", "nsae_saelens"):
        try:
            modules.append(importlib.import_module(name))
        except Exception as error:  # an ImportError, or a broken install raising anything else
            pytest.skip(f"{name} cannot be imported ({type(error).__name__}: {error}); scripts/setup installs "
                        "sae-lens and `pip install ./python`", allow_module_level=True)
    torch, sae_lens, nsae_saelens = modules
    return nsae_saelens, sae_lens, torch


def require_saelens():
    """(sae_lens, torch), or a module-level skip naming what failed to import (for folders of SAELens's own
    architectures, which need no nsae_saelens)."""
    modules = []
    for name in ("torch", "sae_lens"):
        try:
            modules.append(importlib.import_module(name))
        except Exception as error:
            pytest.skip(f"{name} cannot be imported ({type(error).__name__}: {error}); scripts/setup installs sae-lens",
                        allow_module_level=True)
    torch, sae_lens = modules
    return sae_lens, torch

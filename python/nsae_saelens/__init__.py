"""nsae's normalizing SAE (NSAE) in SAELens 6, and papermill parameters for nsae notebooks.

`import nsae_saelens` registers the `nsae` architecture with SAELens (inference and training), so
`SAE.load_from_disk(folder)` reads a folder nsae saved and `LanguageModelSAETrainingRunner` trains an NSAE
(`NSAETrainingConfig`). SAELens has no plugin entry point, so the import is what registers it. When papermill is
installed, the `nsae` kernel language's parameter translator is registered too (and papermill's own command finds it
through this package's `papermill.engine` entry point).
"""
import importlib.util

from .nsae_sae import ARCHITECTURE, NSAE, NSAEConfig, NSAETrainingConfig, NSAETrainingSAE, register

register()

if importlib.util.find_spec("papermill") is not None:  # papermill is optional
    from . import papermill_translator  # noqa: F401  (registers the translator on import)

__all__ = ["ARCHITECTURE", "NSAE", "NSAEConfig", "NSAETrainingConfig", "NSAETrainingSAE", "register"]

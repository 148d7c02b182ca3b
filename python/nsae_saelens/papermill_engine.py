"""The target of this package's `papermill.engine` entry point.

papermill loads its engine entry points when it starts but has none for translators; loading this module imports
the package, which registers the nsae translator. The engine itself is papermill's default (nbclient) one.
"""
from papermill.engines import NBClientEngine


class NSAEEngine(NBClientEngine):
    """papermill's nbclient engine, under the name `nsae`."""

"""The model: the architecture table, the config (loaded and validated once into frozen
dataclasses), image naming and labels, the report, paths and plain-text tables. Imports
nothing of xarch but ``errors``."""

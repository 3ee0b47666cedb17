"""`invoke wheels`: cibuildwheel, the pinned release in its own venv, run on a project
against the helper images by digest: what the generated CI wheel job does, here."""

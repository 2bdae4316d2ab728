"""Applications of the cinn library: colorization, super-resolution, inpainting.

``cinn.apps`` depends on the library (``cinn.*``); the library never imports
``cinn.apps``. The shipped weights and the training configs are package data, found
through ``importlib.resources``, so an installed wheel finds them from any folder.
"""
from importlib import resources
from pathlib import Path

_HERE = Path(str(resources.files(__name__)))
#: folder with the shipped pretrained models (package data: ``cinn/apps/saved_models/``)
SAVED_MODELS = _HERE / "saved_models"
#: folder with the training configs (package data: ``cinn/apps/configs/``)
CONFIGS = _HERE / "configs"

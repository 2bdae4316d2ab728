"""Applications of the cinn library: colorization, super-resolution, inpainting.

``apps`` depends on ``cinn``; ``cinn`` never imports ``apps``.
"""
from pathlib import Path

#: folder with the shipped pretrained models (``saved_models/`` beside ``apps/``)
SAVED_MODELS = Path(__file__).resolve().parent.parent / "saved_models"
#: folder with the training configs
CONFIGS = Path(__file__).resolve().parent.parent / "configs"

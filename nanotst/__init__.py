"""NanoTST: a tiny GPT-style time-series transformer, built one concept at a time.

The library under the NanoTST Explorer app. It never imports streamlit.
"""
from .config import ConfigError, ModelConfig, TrainConfig
from .model import LADDER, NanoTST, Prediction, build_model

__all__ = ["ConfigError", "ModelConfig", "TrainConfig", "LADDER", "NanoTST", "Prediction", "build_model"]

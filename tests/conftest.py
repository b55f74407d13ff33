import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Tests share two cores with whatever else runs; keep torch from oversubscribing them.
torch.set_num_threads(min(2, os.cpu_count() or 1))

from nanotst.config import ModelConfig  # noqa: E402


@pytest.fixture
def tiny_config():
    """A model small enough to train in a second: 8 patches of 8 values."""
    return ModelConfig(context_length=64, patch_size=8, d_model=16, n_heads=2, n_layers=2,
                       ffn_mult=2, dropout=0.0)

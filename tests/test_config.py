import pytest

from nanotst.config import ConfigError, ModelConfig, TrainConfig


def test_defaults_are_the_original_ones():
    m, t = ModelConfig(), TrainConfig()
    assert (m.context_length, m.patch_size, m.d_model, m.n_heads, m.n_layers, m.ffn_mult) == (512, 32, 128, 4, 4, 4)
    assert m.n_patches == 16
    assert (t.n_series, t.epochs, t.batch_size, t.lr, t.grad_clip) == (2000, 100, 32, 3e-4, 1.0)


@pytest.mark.parametrize("changes, field", [
    ({"patch_size": 30}, "patch_size"),
    ({"d_model": 130}, "d_model"),
    ({"n_layers": 0}, "n_layers"),
    ({"d_model": -4}, "d_model"),
    ({"dropout": 1.5}, "dropout"),
    ({"rung": "gpt5"}, "rung"),
    ({"patch_size": 512}, "patch_size"),
    ({"mirror": "yes"}, "mirror"),
])
def test_invalid_model_values_name_the_field(changes, field):
    with pytest.raises(ConfigError, match=f"^{field}:"):
        ModelConfig(**changes)


@pytest.mark.parametrize("changes, field", [
    ({"epochs": 0}, "epochs"), ({"lr": -1.0}, "lr"), ({"batch_size": 2.5}, "batch_size"),
    ({"mix": {"sine_low": 1, "unicorn": 1}}, "mix"), ({"mix": {"flat": 0}}, "mix"),
    ({"nll_beta": -0.5}, "nll_beta"), ({"nll_beta": 2.0}, "nll_beta"), ({"nll_beta": "half"}, "nll_beta"),
    ({"flip": -0.1}, "flip"), ({"flip": 1.5}, "flip"), ({"flip": True}, "flip"),
])
def test_invalid_train_values_name_the_field(changes, field):
    with pytest.raises(ConfigError, match=f"^{field}:"):
        TrainConfig(**changes)


def test_round_trip_and_unknown_keys():
    m = ModelConfig(d_model=64, n_heads=2, causal=False)
    assert ModelConfig.from_dict(m.to_dict()) == m
    t = TrainConfig(mix={"flat": 1.0, "sine_low": 2.0})
    assert TrainConfig.from_dict(t.to_dict()) == t
    with pytest.raises(ConfigError, match="colour"):
        ModelConfig.from_dict({**m.to_dict(), "colour": "red"})

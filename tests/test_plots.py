"""Each figure builder returns a labelled figure with the expected traces on small inputs."""
import numpy as np
import plotly.graph_objects as go

from nanotst import plots

P, N = 4, 5
rng = np.random.default_rng(0)


def _labels(fig):
    layout = fig.to_plotly_json()["layout"]
    return {k: v.get("title", {}).get("text") for k, v in layout.items()
            if k.startswith(("xaxis", "yaxis")) and isinstance(v, dict)}


def _names(fig):
    return [t.name for t in fig.data]


def test_series_figure_has_patch_shading_and_labels():
    fig = plots.series_figure(np.arange(20.0), patch_size=P, y_label="value")
    assert isinstance(fig, go.Figure)
    assert len(fig.data) == 1 and len(fig.data[0].y) == 20
    assert len(fig.layout.shapes) == 3  # patches 0, 2, 4 shaded
    assert _labels(fig) == {"xaxis": "time step", "yaxis": "value"}


def test_patch_grid_figure_is_one_row_per_patch():
    fig = plots.patch_grid_figure(rng.normal(size=(N, P)))
    assert fig.data[0].type == "heatmap"
    assert np.asarray(fig.data[0].z).shape == (N, P)
    assert _labels(fig)["yaxis"] == "patch index"


def test_pipeline_diagram_and_stage_figures():
    fig = plots.pipeline_diagram_figure([("raw", "512"), ("patches", "16×32")])
    assert len(fig.layout.shapes) == 2
    assert any("16×32" in a.text for a in fig.layout.annotations)
    assert plots.stage_figure("normalized", np.zeros(8), "(8,)").data[0].type == "scatter"
    assert plots.stage_figure("embeddings", np.zeros((N, 8)), "(5, 8)").data[0].type == "heatmap"
    names = [a.text for a in plots.pipeline_diagram_figure(
        [("raw series", "512"), ("seasonal patches", "16×32"), ("μ (next patch)", "16×32")]).layout.annotations]
    assert "<b>seasonal<br>patches</b>" in names and "<b>raw series</b>" in names and "<b>μ</b>" in names


def test_next_patch_figure_has_bands_target_and_mu():
    target, mu, sigma = (rng.normal(size=(N - 1, P)) for _ in range(3))
    fig = plots.next_patch_figure(target, mu, np.abs(sigma), P, context=np.zeros(P))
    names = _names(fig)
    for name in ("±2σ", "±1σ", "target", "predicted μ", "first patch (context only)"):
        assert name in names
    mu_trace = fig.data[names.index("predicted μ")]
    assert list(mu_trace.x) == list(range(P, N * P))
    # no sigma (MSE rung): no bands
    assert "±1σ" not in _names(plots.next_patch_figure(target, mu, None, P))


def test_sigma_vs_noise_figure():
    fig = plots.sigma_vs_noise_figure(np.ones(N - 1), np.ones(N - 1), 0.2)
    assert _names(fig)[0] == "predicted σ"
    assert "true noise σ = 0.200" in _names(fig)


HISTORY = [{"step": s, "epoch": 0, "train_loss": 1.0 / (s + 1), "val_loss": 1.2 / (s + 1),
            "elapsed": s, "grammar": {c: {"mse": 1.0 / (s + 1 + i), "sigma": 0.5}
                                      for i, c in enumerate(plots.CASE_COLORS)}}
           for s in (0, 10, 20)]


def test_loss_and_grammar_curves():
    fig = plots.loss_figure(HISTORY)
    assert _names(fig) == ["train", "validation"]
    assert list(fig.data[0].x) == [0, 10, 20]
    fig = plots.grammar_curves_figure(HISTORY)
    assert _names(fig) == list(plots.CASE_COLORS)
    assert [t.line.color for t in fig.data] == list(plots.CASE_COLORS.values())
    assert fig.layout.yaxis.type == "log"


def test_grammar_predictions_figure_has_a_panel_per_case():
    grammar = {c: {"target": np.zeros((N - 1, P)), "mu": np.ones((N - 1, P)),
                   "sigma": np.ones((N - 1, P)), "loc": 0.0, "scale": 1.0} for c in plots.CASE_COLORS}
    fig = plots.grammar_predictions_figure(grammar, P)
    assert [a.text for a in fig.layout.annotations] == list(plots.CASE_COLORS)
    assert len(fig.data) == 12
    # a 2 x 2 grid: each case on its own axes, the top row's x axes follow the bottom row's
    assert [t.xaxis for t in fig.data[::3]] == ["x", "x2", "x3", "x4"]
    assert fig.layout.xaxis.matches == "x3" and fig.layout.xaxis2.matches == "x4"
    assert fig.layout.xaxis3.title.text == "time step" and fig.layout.yaxis4.title.text == "normalized value"
    assert fig.layout.yaxis.domain[0] > fig.layout.yaxis3.domain[1]   # flat above sine


def test_attention_heatmaps_grey_out_the_future():
    maps = rng.random((2, 3, N, N))
    fig = plots.attention_heatmaps_figure(maps, P, causal=True)
    # every layer x head is a tile of one heatmap on one pair of axes (fast in the browser)
    heat = list(fig.data)
    assert len(heat) == 1 and heat[0].type == "heatmap" and fig.layout.plot_bgcolor == plots.MASK_COLOR
    assert not any(k.startswith(("xaxis2", "yaxis2")) for k in fig.layout.to_plotly_json())
    assert [a.text for a in fig.layout.annotations] == [f"layer {a} · head {b}"
                                                        for a in range(2) for b in range(3)]
    z = np.asarray(heat[0].z, dtype=float)
    pitch = N + max(1, N // 8)
    assert z.shape == (2 * pitch - (pitch - N), 3 * pitch - (pitch - N))
    assert np.isnan(z[0, 1]) and not np.isnan(z[1, 0])            # layer 0, head 0
    assert np.isnan(z[N, 0])                                       # the gap between layers
    tile = z[pitch:pitch + N, 2 * pitch:2 * pitch + N]             # layer 1, head 2
    np.testing.assert_allclose(np.tril(tile), np.tril(maps[1, 2]), rtol=1e-6)
    assert np.isnan(tile[np.triu_indices(N, 1)]).all()
    labels = _labels(fig)
    assert "key patch (attended to)" in labels.values()
    assert "query patch (predicting)" in labels.values()
    # time ranges of query and key patch, query and key patch, layer and head
    assert list(heat[0].customdata[1][1]) == [4, 7, 4, 7, 1, 1, 0, 0]
    assert list(heat[0].customdata[pitch + 1][2 * pitch + 1]) == [4, 7, 4, 7, 1, 1, 1, 2]
    assert "masked" in fig.layout.title.text
    fig = plots.attention_heatmaps_figure(maps, P, causal=False)
    assert not np.isnan(np.asarray(fig.data[0].z, dtype=float)[0, 1])
    assert fig.layout.plot_bgcolor != plots.MASK_COLOR
    assert len(plots.attention_matrix_figure(maps[0, 0], P).data) == 1


def test_attention_over_signal_shades_every_patch():
    fig = plots.attention_over_signal_figure(np.arange(N * P, dtype=float), np.full(N, 0.2), P)
    assert len(fig.layout.shapes) == N
    assert _names(fig) == ["series", "attention weight"]


def test_fan_chart_and_metrics():
    h = np.arange(20, 28)
    bands = {cov: (np.zeros(8) - cov / 100, np.zeros(8) + cov / 100) for cov in (50, 80, 95)}
    fig = plots.fan_chart_figure(np.zeros(20), h, np.zeros(8), bands, samples=np.zeros((3, 8)),
                                 truth=np.ones(8))
    names = _names(fig)
    for name in ("context", "95% band", "80% band", "50% band", "median", "held-out truth"):
        assert name in names
    assert names.count("sample paths") == 3
    # seven legend entries and a long title do not fit together at the top: the legend goes below
    assert fig.layout.legend.y < 0 and fig.layout.legend.yanchor == "top"


def test_mix_figure_shows_shares():
    fig = plots.mix_figure({"flat": 1.0, "sine_low": 2.0, "noise": 1.0})
    assert list(fig.data[0].y) == ["noise", "sine_low", "flat"]     # the first family on top
    assert np.allclose(fig.data[0].x, [0.25, 0.5, 0.25])
    assert _labels(fig) == {"xaxis": "share of the training series", "yaxis": "signal family"}


def test_compare_figures():
    fig = plots.compare_losses_figure({"a": HISTORY, "b": HISTORY[:2]})
    assert _names(fig) == ["a", "b"]
    # variant names are long ("no mask (padding looks like the mean)"): the legend goes below
    runs = {"rotary positions": [HISTORY], "learned positions": [HISTORY], "both": [HISTORY]}
    grammar = plots.compare_grammar_figure({"a": {"flat": 0.1, "sine": 0.3}})
    for fig in (fig, plots.compare_runs_figure(runs, key="val_loss"), grammar):
        assert fig.layout.legend.y < 0 and fig.layout.legend.yanchor == "top"
    fig = plots.compare_grammar_figure({"a": {"flat": 0.1, "sine": 0.3}, "b": {"flat": 0.2, "sine": 0.1}})
    assert _names(fig) == ["flat", "sine"]
    assert fig.data[0].marker.color == plots.CASE_COLORS["flat"]


def test_series_fan_chart_on_a_date_axis():
    hist_x = np.array(["2001-10-01", "2001-11-01", "2001-12-01"], dtype="datetime64[ns]")
    fut_x = np.array(["2002-01-01", "2002-02-01"], dtype="datetime64[ns]")
    bands = {50: (np.zeros(2), np.ones(2)), 95: (-np.ones(2), 2 * np.ones(2))}
    fig = plots.series_fan_chart_figure([1.0, 2.0, 3.0], [3.5, 4.0], bands, hist_x, fut_x,
                                        samples=np.ones((3, 2)), truth=[3.0, 4.0],
                                        x_label="month", y_label="ppm", history_name="co2")
    names = _names(fig)
    assert {"co2", "50% band", "95% band", "median", "sample paths", "held-out truth"} <= set(names)
    assert _labels(fig) == {"xaxis": "month", "yaxis": "ppm"}
    assert str(fig.layout.shapes[0].x0).startswith("2001-12-01")
    fig.to_json()
    # no x given: steps, the forecast right after the history
    fig = plots.series_fan_chart_figure([1.0, 2.0], [3.0], {80: (np.zeros(1), np.ones(1))})
    assert list(fig.data[-1].x) == [2]


def test_calibration_figure():
    uniform = (np.arange(100) + 0.5) / 100
    fig = plots.calibration_figure({"before": {0.5: 0.4, 0.8: 0.7, 0.95: 0.9}, "after": {0.5: 0.5}},
                                   {"before": uniform, "after": uniform[::2]}, bins=10)
    coverage = [t for t in fig.data if t.xaxis == "x"]
    pit = [t for t in fig.data if t.xaxis == "x2"]
    assert [t.name for t in coverage] == ["calibrated", "before", "after"]
    assert list(coverage[1].x) == [0.5, 0.8, 0.95] and list(coverage[1].y) == [0.4, 0.7, 0.9]
    assert [t.type for t in pit] == ["bar", "bar", "scatter"]
    assert np.allclose(pit[0].y, 1.0)               # uniform PIT: density 1 everywhere
    assert list(pit[0].customdata) == [10] * 10 and list(pit[1].customdata) == [5] * 10
    # one colour and one legend entry per model across both panels
    assert coverage[1].marker.color == pit[0].marker.color != pit[1].marker.color
    assert [t.name for t in fig.data if t.showlegend is not False] == ["calibrated", "before", "after"]
    assert _labels(fig) == {"xaxis": "nominal coverage of the band",
                            "yaxis": "observed coverage (held-out values)",
                            "xaxis2": "PIT (share of sample paths below the truth)",
                            "yaxis2": "density"}
    prev = plots.series_preview_figure(np.arange(5.0), x=np.arange(2000, 2005), x_label="year")
    assert _labels(prev)["xaxis"] == "year" and list(prev.data[0].x) == list(range(2000, 2005))


def test_mu_and_sigma_are_drawn_as_two_parallel_outputs_of_one_head():
    stages = (("raw series", "512"), ("block 3", "16×128"), ("μ (next patch)", "16×32"),
              ("σ (next patch)", "16×32"))
    fig = plots.pipeline_diagram_figure(stages)
    rects = fig.layout.shapes
    assert len(rects) == 4
    assert rects[2].x0 == rects[3].x0 and rects[2].y0 > rects[3].y1     # one column, stacked
    labels = [a.text for a in fig.layout.annotations if a.text]
    assert "<b>μ</b>" in labels and "<b>σ</b>" in labels                  # short enough for the box
    arrows = [a for a in fig.layout.annotations if a.showarrow]
    assert len(arrows) == 3                                               # into block 3, μ and σ


def test_a_never_negative_heatmap_runs_from_zero():
    sigma = plots.patch_grid_figure(np.full((4, 8), 0.3)).data[0]
    assert sigma.zmin == 0 and sigma.zmid is None
    signed = plots.patch_grid_figure(np.linspace(-1, 1, 32).reshape(4, 8)).data[0]
    assert signed.zmid == 0


def test_the_fan_chart_opens_on_the_forecast_and_the_whole_series_is_a_double_click_away():
    context, H = np.sin(np.arange(512) / 5), 32
    t = np.arange(512, 512 + H)
    band = {80: (np.zeros(H), np.ones(H))}
    fig = plots.fan_chart_figure(context, t, np.zeros(H), band)
    assert tuple(fig.layout.xaxis.range) == (512 - 96 - 0.5, 543.5)
    assert len(fig.data[0].y) == 512                      # the whole context is in the figure
    assert plots.fan_chart_figure(context, t, np.zeros(H), band, zoom=False).layout.xaxis.range is None


def test_grammar_curves_smooth_mark_the_learning_order_and_label_every_decade():
    g = lambda m: {"flat": {"mse": m}, "sine": {"mse": 1.0}}
    history = [{"step": 10 * i, "grammar": g(m)} for i, m in enumerate([1.0, 0.1, 0.001, 0.01])]
    fig = plots.grammar_curves_figure(history, smooth=3, learned=[{"case": "flat", "step": 20}])
    names = [d.name for d in fig.data]
    assert names == ["flat (raw)", "flat", "sine (raw)", "sine"]
    np.testing.assert_allclose(fig.data[1].y[2], (1.0 * 0.1 * 0.001) ** (1 / 3))
    assert fig.layout.yaxis.dtick == 1 and fig.layout.yaxis.tickformat == "~g"
    assert any(s.x0 == 20 for s in fig.layout.shapes)     # the marker where flat was learned


def test_a_one_batch_spike_does_not_flatten_the_loss_axis():
    history = [{"step": i, "train_loss": 1.0 - 0.01 * i, "val_loss": None} for i in range(20)]
    history[7]["train_loss"] = 23.0
    fig = plots.loss_figure(history)
    assert fig.layout.yaxis.range[1] < 5 and max(fig.data[0].y) == 23.0


def test_a_log_axis_within_one_decade_still_has_labelled_ticks():
    import plotly.graph_objects as go
    narrow = plots.log_ticks(go.Figure(go.Scatter(y=[0.6, 0.75, 0.9])))
    assert list(narrow.layout.yaxis.ticktext) == ["0.6", "0.7", "0.8", "0.9"] and narrow.layout.yaxis.dtick is None
    assert list(plots.log_ticks(go.Figure(go.Scatter(y=[0.15, 0.6]))).layout.yaxis.ticktext) == ["0.2", "0.5"]
    wide = plots.log_ticks(go.Figure(go.Scatter(y=[0.001, 0.1, 1.0])))
    assert wide.layout.yaxis.dtick == 1 and wide.layout.yaxis.tickvals is None
    runs = {"a": [[{"step": s, "val_mse": 1.0 - 0.001 * s} for s in (0, 100, 300)]] * 3,
            "b": [[{"step": s, "val_mse": 0.98 - 0.001 * s} for s in (0, 100, 300)]] * 3}
    fig = plots.compare_runs_figure(runs)           # the Experiments page's chart: 0.68 to 1.0
    ticks = np.asarray(fig.layout.yaxis.tickvals)
    assert fig.layout.yaxis.type == "log" and ((ticks >= 0.68) & (ticks <= 1.0)).sum() >= 2


def test_season_gates_figure_has_one_bar_per_patch_and_names_the_lag():
    from nanotst.plots import season_gates_figure
    fig = season_gates_figure(np.array([0.0, 0.2, 0.9]), 35, 32)
    assert "35 steps back" in fig.layout.title.text
    np.testing.assert_allclose(fig.data[0].y, [0.0, 0.2, 0.9], rtol=1e-6)
    assert "copies 0.90 of the values t 61–92" in fig.data[0].hovertext[2]   # patch 2 predicts t 96-127
    short = season_gates_figure(np.array([0.0, 0.2, 0.9]), 7, 32)           # a season shorter than a patch
    assert "the last 7 values, repeated" in short.layout.title.text
    assert "copies 0.90 of the values t 89–95, repeated" in short.data[0].hovertext[2]
    assert fig.data[0].text is None                                          # one season each: no labels
    chosen = season_gates_figure(np.array([0.0, 0.2, 0.9]), 35, 32, seasons=np.array([1, 3, 4]))
    assert list(chosen.data[0].text) == ["1", "3", "4"]
    assert "(the mean of the last 4 seasons)" in chosen.data[0].hovertext[2]
    assert "seasons" not in chosen.data[0].hovertext[0]

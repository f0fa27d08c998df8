"""Image rendering speed: 10^5 images of 16x16, against drawing as many standard normals in the same run.

Run with ``python -m pytest tests/perf --benchmark-only``. Nothing here asserts a time: the ratio to the
baseline (``extra_info["ratio_to_baseline"]``) is what to compare across machines and commits.
"""


import numpy as np
import pytest

import cowbench as cb

N = 100_000
ROUNDS = 5


@pytest.fixture(scope="module")
def image_batch():
    """The cow image rendering and 10^5 units' variable values and parameters (not timed)."""
    scn = cb.make_scenario("cow", rendering="image")
    scm = scn.scm
    env = np.zeros(N, dtype=np.int64)
    noise = scm.draw_exogenous(np.random.default_rng(0), N)
    return scm.rendering, scm.evaluate(noise, env), scm.row_params(env)


def _baseline() -> np.ndarray:
    # the same number of variates as pixels: one standard normal per pixel of every image
    return np.random.default_rng(1).standard_normal((N, 16 * 16))



@pytest.mark.benchmark(group="image-rendering")
def test_perf_image_rendering_1e5(benchmark, image_batch, best_of):
    rendering, values, params = image_batch

    def draw_and_render():
        # the whole per-unit cost of the rendering: its exogenous noise (pixels included), then the pixels
        noise = rendering.draw_noise(np.random.default_rng(2), N)
        return rendering.render(values, noise, params)

    x = benchmark.pedantic(draw_and_render, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert x.shape == (N, 256) and x.dtype == np.float32
    noise = rendering.draw_noise(np.random.default_rng(2), N)
    baseline = best_of(_baseline)
    render_only = best_of(lambda: rendering.render(values, noise, params))
    benchmark.extra_info.update({
        "n_images": N,
        "baseline": "numpy default_rng standard_normal((1e5, 256)), float64",
        "baseline_min_s": baseline,
        "render_only_min_s": render_only,
        "ratio_to_baseline": benchmark.stats.stats.min / baseline,
        "render_only_ratio_to_baseline": render_only / baseline,
    })


@pytest.mark.benchmark(group="image-rendering")
def test_perf_baseline_standard_normals_1e5x256(benchmark):
    out = benchmark.pedantic(_baseline, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert out.shape == (N, 256)

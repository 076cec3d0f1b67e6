"""The patch denoiser: patch grid and folding, normalisation, the shipped ``image`` model, the comparison."""

import numpy as np
import pytest
import torch
from conftest import requires_cuda
from skimage import data

import pydenoise
from pydenoise import image
from pydenoise.image.patches import denormalise, grid, map_patches, normalise, pad_reflect101, reflect101_index


def psnr255(clean, estimate):
    error = np.mean((np.asarray(clean, float) - np.asarray(estimate, float)) ** 2)
    return 10 * np.log10(255.0**2 / error)


@pytest.fixture(scope="module")
def camera_crop():
    return data.camera()[100:228, 150:278].astype(np.float64)


@pytest.fixture(scope="module")
def noisy_crop(camera_crop):
    return camera_crop + np.random.default_rng(3).normal(0, 25, camera_crop.shape)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 16, 17])
@pytest.mark.parametrize("pad", [0, 1, 4, 15, 40])
def test_reflect101_index_matches_numpy(size, pad):
    axis = np.arange(size)
    expected = np.pad(axis, (pad, pad + 1), mode="reflect") if size > 1 else np.zeros(size + 2 * pad + 1, int)
    assert reflect101_index(size, pad, pad + 1).tolist() == expected.tolist()


def test_pad_reflect101_is_opencv_border_default():
    cv2 = pytest.importorskip("cv2")
    img = np.random.default_rng(0).random((7, 9)).astype(np.float32)
    ours = pad_reflect101(torch.from_numpy(img), 3, 2, 5, 4).numpy()
    assert np.array_equal(ours, cv2.copyMakeBorder(img, 3, 2, 5, 4, cv2.BORDER_REFLECT_101))


@pytest.mark.parametrize("stride", [1, 2, 4, 8, 16])
def test_grid_covers_every_pixel_equally(stride):
    count, before, after = grid(37, stride)
    cover = np.zeros(before + 37 + after)
    for k in range(count):
        cover[k * stride : k * stride + 16] += 1
    assert np.all(cover[before : before + 37] == 16 // stride)


@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 2, 3), (3, 16, 16), (2, 37, 5), (1, 64, 49)])
@pytest.mark.parametrize("stride", [1, 3, 4, 16])
def test_identity_patches_fold_back_exactly(shape, stride):
    img = torch.rand(shape, dtype=torch.float64)
    assert torch.allclose(map_patches(img, lambda p: p, stride), img, atol=1e-12)


def test_patches_are_the_images_windows_in_row_major_order():
    img = torch.arange(20 * 21, dtype=torch.float64).view(1, 20, 21)
    seen = []
    map_patches(img, lambda p: seen.append(p.clone()) or p, stride=16)
    first = seen[0][0].view(16, 16)
    padded = pad_reflect101(img[0], 0, 12, 0, 11)  # stride 16: no padding before, up to two patches after
    assert torch.equal(first, padded[:16, :16])


def test_normalise_round_trip():
    patches = torch.randn(5, 256, dtype=torch.float64) * 30 + 100
    z, mean = normalise(patches, 7.0)
    assert z.dtype == torch.float32 and torch.allclose(z.mean(dim=1), torch.zeros(5), atol=1e-5)
    assert torch.allclose(denormalise(z, mean, 7.0), patches, atol=1e-4)


@torch.no_grad()
def naive_denoise(noisy, sigma, stride):
    """An independent slow implementation: every patch by hand, the pure-torch reference network."""
    net = pydenoise.load("image").module
    height, width = noisy.shape
    rows, top, _ = grid(height, stride)
    cols, left, _ = grid(width, stride)
    padded = np.pad(noisy, ((top, 16 * 3), (left, 16 * 3)), mode="reflect")
    window = np.sin(np.pi * (np.arange(16) + 0.5) / 16) ** 2
    weight = np.outer(window, window)
    total = np.zeros_like(padded)
    norm = np.zeros_like(padded)
    for i in range(rows):
        for j in range(cols):
            y, x = i * stride, j * stride
            p = padded[y : y + 16, x : x + 16]
            z = torch.from_numpy((p - p.mean()).reshape(1, 256) / sigma)
            weights = [w.double() for w in net.weights()]
            biases = [b.double() for b in net.biases()]
            out = pydenoise.ops.ddae_reference(z, weights, biases, residual=net.residual)
            total[y : y + 16, x : x + 16] += weight * (p.mean() + sigma * out.numpy().reshape(16, 16))
            norm[y : y + 16, x : x + 16] += weight
    inside = (slice(top, top + height), slice(left, left + width))
    return total[inside] / norm[inside]


def test_denoise_matches_a_naive_implementation():
    noisy = np.random.default_rng(0).normal(120, 20, (21, 19))
    ours = image.denoise(noisy, sigma=20, data_range=255, stride=4, wiener=False)
    assert np.allclose(ours, naive_denoise(noisy, 20.0, 4), atol=1e-3)


def test_denoise_improves_camera_by_a_wide_margin(camera_crop, noisy_crop):
    out = image.denoise(noisy_crop, sigma=25, data_range=255)
    assert out.shape == noisy_crop.shape and out.dtype == np.float64
    assert psnr255(camera_crop, out) > psnr255(camera_crop, noisy_crop) + 7


def test_blind_denoise_estimates_sigma(camera_crop, noisy_crop):
    assert 21 < image.estimate_sigma(noisy_crop, data_range=255) < 29
    blind = image.denoise(noisy_crop, data_range=255)
    known = image.denoise(noisy_crop, sigma=25, data_range=255)
    assert abs(psnr255(camera_crop, blind) - psnr255(camera_crop, known)) < 0.5


@pytest.mark.parametrize("sigma", [5, 15, 50])
def test_estimate_sigma_on_camera(sigma):
    noisy = data.camera() + np.random.default_rng(sigma).normal(0, sigma, (512, 512))
    assert abs(image.estimate_sigma(noisy, data_range=255) - sigma) < 0.15 * sigma + 1.0


def test_estimate_sigma_is_not_fooled_by_texture():
    grass = data.grass().astype(np.float64)  # fine texture: its finest wavelet details read 2.6 σ at σ = 5
    noisy = grass + np.random.default_rng(0).normal(0, 5, grass.shape)
    assert 4.5 < image.estimate_sigma(noisy, data_range=255) < 1.35 * 5


def test_estimate_sigma_of_colour_uses_the_opponent_channels():
    rgb = data.astronaut().astype(np.float64)
    noisy = rgb + np.random.default_rng(0).normal(0, 15, rgb.shape)
    assert abs(image.estimate_sigma(noisy, data_range=255, channel_axis=-1) - 15) < 1.0


def test_texture_threshold_is_the_gamma_quantile_of_liu_et_al():
    from pydenoise.image.learned import _texture_threshold

    # rank 45 and trace 35 of the 7×7 patch's gradient form: Gamma(22.5, 2·35/45).ppf(1 - 1e-6)
    assert _texture_threshold() == pytest.approx(81.8207674, rel=1e-6)


def test_estimate_sigma_refuses_an_image_too_small_for_patch_statistics():
    with pytest.raises(ValueError, match="at least 14×14"):
        image.estimate_sigma(np.zeros((13, 40)), data_range=255)


def test_uint8_and_float_round_trip(camera_crop, noisy_crop):
    as_uint8 = np.clip(noisy_crop, 0, 255).round().astype(np.uint8)
    out8 = image.denoise(as_uint8, sigma=25)
    assert out8.dtype == np.uint8 and out8.shape == as_uint8.shape
    unit = image.denoise((noisy_crop / 255).astype(np.float32), sigma=25 / 255, data_range=1.0)
    assert unit.dtype == np.float32
    scaled = image.denoise(noisy_crop, sigma=25, data_range=255)
    assert np.allclose(unit * 255, scaled, atol=0.05)  # the model is scale-invariant
    assert abs(psnr255(camera_crop, out8) - psnr255(camera_crop, scaled)) < 0.3


def test_colour_image_is_denoised_in_colour():
    clean = data.astronaut()[:96, 100:196].astype(np.float64)
    noisy = clean + np.random.default_rng(1).normal(0, 25, clean.shape)
    out = image.denoise(noisy, sigma=25, data_range=255, channel_axis=-1)
    assert out.shape == clean.shape
    assert psnr255(clean, out) > psnr255(clean, noisy) + 7
    channels_first = image.denoise(np.moveaxis(noisy, -1, 0), sigma=25, data_range=255, channel_axis=0)
    assert np.allclose(np.moveaxis(channels_first, 0, -1), out)


def test_torch_batch_in_torch_batch_out(noisy_crop):
    batch = torch.from_numpy(np.stack([noisy_crop, noisy_crop[::-1].copy()]))[:, None].float()
    out = image.denoise(batch, sigma=25, data_range=255)
    assert isinstance(out, torch.Tensor) and out.shape == batch.shape and out.dtype == torch.float32
    single = image.denoise(noisy_crop.astype(np.float32), sigma=25, data_range=255)
    assert np.allclose(out[0, 0].numpy(), single, atol=1e-3)


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (15, 40), (33, 17)])
def test_any_size(shape):
    noisy = np.random.default_rng(0).normal(100, 10, shape)
    out = image.denoise(noisy, sigma=10, data_range=255, stride=4)
    assert out.shape == shape and np.isfinite(out).all()


def test_zero_sigma_returns_the_input(noisy_crop):
    out = image.denoise(noisy_crop, sigma=0, data_range=255)  # float64 passes through float32, as in the filters
    assert out.dtype == noisy_crop.dtype and np.allclose(out, noisy_crop, rtol=1e-6, atol=0)


def dihedral_numpy(img, k):
    """The k-th transform of image.DIHEDRAL and its inverse, written with numpy."""
    rotations, flip = [(0, False), (2, False), (0, True), (2, True), (1, False), (3, False), (1, True), (3, True)][k]

    def forward(a):
        return np.ascontiguousarray(np.rot90(np.fliplr(a) if flip else a, rotations))

    def inverse(a):
        return np.fliplr(np.rot90(a, -rotations)) if flip else np.rot90(a, -rotations)

    return forward, inverse


def test_ensemble_is_the_mean_of_the_transformed_runs():
    noisy = np.random.default_rng(2).normal(120, 20, (23, 30))
    runs = []
    for k in range(8):
        forward, inverse = dihedral_numpy(noisy, k)
        assert np.array_equal(inverse(forward(noisy)), noisy)
        runs.append(inverse(image.denoise(forward(noisy), sigma=20, data_range=255, stride=4)))
    for size in (1, 2, 4, 8):
        ours = image.denoise(noisy, sigma=20, data_range=255, stride=4, ensemble=size)
        assert np.allclose(ours, np.mean(runs[:size], axis=0), atol=1e-4)
    assert not np.allclose(runs[0], runs[4], atol=1e-2)  # the transforms do change the result


def test_ensemble_of_four_commutes_with_flips(noisy_crop):
    out = image.denoise(noisy_crop[:40, :52], sigma=25, data_range=255, ensemble=4)
    flipped = image.denoise(noisy_crop[:40, :52][::-1].copy(), sigma=25, data_range=255, ensemble=4)
    assert np.allclose(flipped[::-1], out, atol=1e-4)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"img": np.zeros((8, 8))}, ValueError, "data_range"),
        ({"img": np.zeros((8, 8), np.int32)}, TypeError, "uint8 or floating"),
        ({"img": np.zeros((8, 8, 3), np.uint8)}, ValueError, "channel_axis"),
        ({"img": np.zeros((0, 8), np.uint8)}, ValueError, "empty"),
        ({"img": np.full((8, 8), np.nan), "data_range": 1}, ValueError, "NaN"),
        ({"img": np.zeros((8, 8), np.uint8), "sigma": -1}, ValueError, "sigma"),
        ({"img": np.zeros((8, 8), np.uint8), "stride": 0}, ValueError, "stride"),
        ({"img": np.zeros((8, 8), np.uint8), "stride": 2.0}, TypeError, "stride"),
        ({"img": np.zeros((8, 8), np.uint8), "model": "nope"}, ValueError, "unknown model"),
        ({"img": np.zeros((8, 8), np.uint8), "ensemble": 3}, ValueError, "ensemble"),
        ({"img": np.zeros((8, 8), np.uint8), "ensemble": 0}, ValueError, "ensemble"),
        ({"img": np.zeros((8, 8), np.uint8), "ensemble": True}, TypeError, "ensemble"),
        ({"img": np.zeros((8, 8), np.uint8), "ensemble": 2.0}, TypeError, "ensemble"),
        ({"img": torch.zeros(8, 8)}, ValueError, "N, C, H, W"),
    ],
)
def test_bad_input_names_the_argument(kwargs, error, match):
    kwargs.setdefault("sigma", 10)
    with pytest.raises(error, match=match):
        image.denoise(**kwargs)


def test_sigma_far_from_training_range_warns():
    with pytest.warns(RuntimeWarning, match="data_range"):
        image.denoise(np.random.default_rng(0).random((16, 16)), sigma=0.1, data_range=255)


def test_shipped_model_records_how_it_was_made():
    config = pydenoise.load("image").config
    assert config["residual"] and config["widths"] == [256, 512, 512, 512, 256]
    assert "imagetrain" in config["command"] and "camera" not in config["training_data"].split("except")[0]


def test_compare_runs_every_method_on_a_small_image():
    pytest.importorskip("skimage.restoration")
    from pydenoise.image.compare import compare

    clean = data.camera()[200:264, 200:264]
    names = ["noisy", "patch DAE", "TV", "NL-means"]
    noisy, results = compare(clean, 25, methods=names)
    assert [r.method for r in results] == names
    by_name = {r.method: r for r in results}
    assert abs(by_name["noisy"].psnr - psnr255(clean, noisy)) < 1e-9
    assert by_name["patch DAE"].psnr > by_name["noisy"].psnr + 5


@requires_cuda
def test_cuda_matches_cpu(noisy_crop):
    batch = torch.from_numpy(noisy_crop).float()[None, None]
    on_gpu = image.denoise(batch.cuda(), sigma=25, data_range=255)
    assert on_gpu.is_cuda
    assert torch.allclose(on_gpu.cpu(), image.denoise(batch, sigma=25, data_range=255), atol=1e-2)


def test_cli_denoise_routes_png_files_to_the_patch_denoiser(tmp_path, camera_crop, noisy_crop):
    import skimage.io

    from pydenoise import cli

    source, target = tmp_path / "noisy.png", tmp_path / "clean.png"
    skimage.io.imsave(source, np.clip(noisy_crop, 0, 255).round().astype(np.uint8))
    assert cli.main(["denoise", str(source), "-o", str(target)]) == 0
    out = skimage.io.imread(target)
    assert out.shape == camera_crop.shape and out.dtype == np.uint8
    assert psnr255(camera_crop, out) > psnr255(camera_crop, noisy_crop) + 6
    trace_options = (["--postfilter"], ["--no-postfilter"], ["--highpass", "0.1"], ["--long-period"])
    for flags in trace_options:  # refused for images
        assert cli.main(["denoise", str(source), "-o", str(tmp_path / "x.png"), *flags]) == 1
        assert not (tmp_path / "x.png").exists()


def test_patch_training_can_continue_a_saved_model(tmp_path):
    from pydenoise.core.nn import load_model
    from pydenoise.image.train import train_patch_dae

    pictures = [data.chelsea()[..., 1].astype(np.float32), data.coffee()[..., 1].astype(np.float32)]
    first, second = tmp_path / "first.safetensors", tmp_path / "second.safetensors"
    quiet = dict(widths=(256, 64, 256), batch=8, log=lambda line: None)
    train_patch_dae(pictures, first, steps=1, command="first run", **quiet)
    saved, _ = load_model(first)
    net = train_patch_dae(pictures, second, steps=1, lr=1e-12, init=first, command="second run", **quiet)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(net.state_dict().values(), saved.state_dict().values()))
    config = load_model(second)[1]
    assert config["command"] == "second run" and config["initialised_from"]["command"] == "first run"
    assert config["initialised_from"]["steps"] == 1
    with pytest.raises(ValueError, match="init"):
        train_patch_dae(
            pictures,
            tmp_path / "third.safetensors",
            steps=1,
            init=first,
            widths=(256, 32, 256),
            batch=8,
            log=lambda line: None,
        )


@pytest.mark.parametrize("exponent, share", [(1.0, 1 / 17), (0.5, 1 / 5), (0.0, 1 / 2)])
def test_patch_sampler_size_exponent_weighs_the_images(exponent, share):
    from pydenoise.image.train import PatchSampler

    small, large = np.zeros((19, 19), np.float32), np.ones((67, 67), np.float32)  # 256 and 4096 crop positions
    crops = PatchSampler([small, large], 4, seed=0, size_exponent=exponent).crops(20000)
    drawn_small = float((crops.flatten(1).amax(1) == 0).float().mean())
    assert abs(drawn_small - share) < 0.02

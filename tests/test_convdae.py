"""ConvDAE: both seed variants, file round trip, training on scikit-image's faces, latent interpolation, CLI."""

import numpy as np
import pytest
import skimage.io
import torch
from skimage.data import lfw_subset

from pydenoise import cli
from pydenoise.core.nn import ConvDAE, load_model, save_model
from pydenoise.image import interpolate
from pydenoise.image.train import train_conv_dae


@pytest.fixture(scope="module")
def faces():
    return lfw_subset()  # 200 faces, 25×25, float in [0, 1]


@pytest.mark.parametrize("variant", ["pool", "batchnorm"])
@pytest.mark.parametrize("shape", [(28, 28), (25, 31), (8, 8)])
def test_fully_convolutional_shapes(variant, shape):
    net = ConvDAE(variant=variant).eval()
    x = torch.rand(2, 1, *shape)
    out = net(x)
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
    assert net.encode(x).shape[1] == 64


def test_colour_and_linear_output():
    net = ConvDAE(channels=3, filters=(16, 32, 64), output="linear").eval()
    assert net(torch.rand(1, 3, 40, 40)).shape == (1, 3, 40, 40)


def test_dense_latent_needs_its_size():
    net = ConvDAE(variant="batchnorm", latent=16, size=(25, 25)).eval()
    assert net.encode(torch.rand(3, 1, 25, 25)).shape == (3, 16)
    with pytest.raises(ValueError, match="25×25"):
        net(torch.rand(1, 1, 24, 24))
    with pytest.raises(ValueError, match="size"):
        ConvDAE(latent=16)


@pytest.mark.parametrize("bad", [{"variant": "dense"}, {"filters": ()}, {"output": "tanh"}, {"channels": 0}])
def test_bad_configuration(bad):
    with pytest.raises(ValueError):
        ConvDAE(**bad)


@pytest.mark.parametrize("variant", ["pool", "batchnorm"])
def test_file_round_trip(tmp_path, variant):
    net = ConvDAE(variant=variant, latent=8, size=(16, 16)).eval()
    save_model(net, tmp_path / "c.safetensors", {"note": "x"})
    loaded, config = load_model(tmp_path / "c.safetensors")
    x = torch.rand(2, 1, 16, 16)
    assert isinstance(loaded, ConvDAE) and config["note"] == "x" and config["variant"] == variant
    assert torch.allclose(loaded(x), net(x))


@pytest.fixture(scope="module")
def trained_faces(faces, tmp_path_factory):
    torch.manual_seed(0)
    net = ConvDAE(variant="pool", filters=(32, 64))
    path = tmp_path_factory.mktemp("faces") / "faces.safetensors"
    train_conv_dae(
        net,
        list(faces[:180] * 255),
        path,
        steps=200,
        batch=32,
        crop=24,
        sigma_range=(20, 40),
        validation_images=list(faces[180:] * 255),
        log=lambda line: None,
    )
    return net, path


def test_training_on_faces_denoises_unseen_faces(trained_faces, faces):
    net, path = trained_faces
    clean = torch.from_numpy(faces[180:]).float()[:, None]
    noisy = clean + 30 / 255 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    loaded, config = load_model(path)
    with torch.no_grad():
        out = loaded(noisy)
    mse_noisy = (noisy - clean).square().mean()
    mse_out = (out - clean).square().mean()
    assert 10 * torch.log10(mse_noisy / mse_out) > 3  # dB gained on faces it never saw
    assert config["trained_steps"] > 0 and config["validation_loss"] > 0


def test_interpolation_walks_from_a_to_b(trained_faces, faces):
    net, _ = trained_faces
    a, b = faces[180], faces[181]
    path = interpolate(a, b, 6, net, data_range=1.0)
    assert path.shape == (6, 25, 25) and path.dtype == a.dtype
    with torch.no_grad():
        ends = net.eval()(torch.from_numpy(np.stack([a, b])).float()[:, None]).numpy()[:, 0]
    assert np.allclose(path[0], ends[0], atol=1e-5) and np.allclose(path[-1], ends[1], atol=1e-5)
    distances = [np.abs(frame - path[-1]).mean() for frame in path]
    assert all(later < earlier for earlier, later in zip(distances, distances[1:]))
    as_uint8 = interpolate((a * 255).astype(np.uint8), (b * 255).astype(np.uint8), 3, net)
    assert as_uint8.dtype == np.uint8


def test_interpolation_checks_its_inputs(trained_faces, faces):
    net, path = trained_faces
    with pytest.raises(ValueError, match="steps"):
        interpolate(faces[0], faces[1], 1, net, data_range=1.0)
    with pytest.raises(ValueError, match="same shape"):
        interpolate(faces[0], faces[1][:20], 3, net, data_range=1.0)
    with pytest.raises(ValueError, match="data_range"):
        interpolate(faces[0], faces[1], 3, path)


def test_cli_train_images_folder(tmp_path, faces):
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(20):
        skimage.io.imsave(folder / f"{i}.png", (faces[i] * 255).round().astype(np.uint8), check_contrast=False)
    out = tmp_path / "m.safetensors"
    status = cli.main(
        [
            "train",
            "--images",
            str(folder),
            "-o",
            str(out),
            "--arch",
            "conv",
            "--crop",
            "16",
            "--steps",
            "20",
            "--batch",
            "8",
        ]
    )
    net, config = load_model(out)
    assert status == 0 and isinstance(net, ConvDAE) and "--images" in config["command"]


def test_cli_train_rejects_an_empty_folder(tmp_path):
    with pytest.raises(ValueError, match="no image files"):
        cli.main(["train", "--images", str(tmp_path), "-o", str(tmp_path / "m.safetensors")])


def test_cli_compare_prints_a_table_and_writes_a_montage(tmp_path, capsys):
    from skimage import data

    source = tmp_path / "crop.png"
    skimage.io.imsave(source, data.camera()[:64, :64], check_contrast=False)
    montage = tmp_path / "montage.png"
    status = cli.main(
        ["compare", str(source), "--sigma", "25", "--methods", "noisy", "patch DAE", "TV", "--montage", str(montage)]
    )
    printed = capsys.readouterr().out
    assert status == 0 and "patch DAE" in printed and "TV" in printed
    assert montage.stat().st_size > 1000

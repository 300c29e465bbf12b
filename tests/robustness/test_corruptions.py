"""Each of the 15 corruptions equals the imagecorruptions package (1.1.2, the COCO-C implementation) on a
fixed image under the same seed.  The package's own code runs here, loaded from its installed source with
the three documented changes that let it run on numpy 2 and scikit-image >= 0.19 (panbench.robustness.
corruptions' docstring): ``channel_axis=-1`` for ``multichannel=True``, ``np.float64`` for ``np.float_``,
and scikit-image 0.18's salt-and-pepper ``random_noise`` (quoted below) for the current one, which no
longer draws from the seeded global state."""

from __future__ import annotations

import importlib.util
import types

import numpy as np
import pytest

from panbench.errors import InputError
from panbench.robustness import corruptions as C

SKIMAGE_018_SALT_AND_PEPPER = '''
def _random_noise_018(image, amount, salt_vs_pepper=0.5):
    # scikit-image 0.18 skimage/util/noise.py, random_noise(mode='s&p') for an image in [0, 1]
    out = image.copy()
    p = amount
    q = salt_vs_pepper
    flipped = np.random.choice([True, False], size=image.shape, p=[p, 1 - p])
    salted = np.random.choice([True, False], size=image.shape, p=[q, 1 - q])
    peppered = ~salted
    out[flipped & salted] = 1
    out[flipped & peppered] = 0
    return np.clip(out, 0, 1.0)
'''


@pytest.fixture(scope="module")
def reference() -> types.ModuleType:
    """The package's ``corruptions`` module with the three documented changes."""
    pytest.importorskip(C.PACKAGE, reason=f"the reference implementation: {C.INSTALL}")
    spec = importlib.util.find_spec(C.PACKAGE)
    path = f"{spec.submodule_search_locations[0]}/corruptions.py"
    src = open(path).read()
    changes = [("multichannel=True", "channel_axis=-1"), ("np.float_", "np.float64"),
               ("sk.util.random_noise(np.array(x) / 255., mode='s&p', amount=c)",
                "_random_noise_018(np.array(x) / 255., amount=c)")]
    for old, new in changes:
        assert old in src, f"{path}: {old!r} not found: another version of the package"
        src = src.replace(old, new)
    mod = types.ModuleType("imagecorruptions.corruptions")
    mod.__file__ = path
    exec(compile(src + SKIMAGE_018_SALT_AND_PEPPER, path, "exec"), mod.__dict__)
    return mod


def fixed_image() -> np.ndarray:
    """A 72 x 96 RGB image with edges, flat areas, texture and saturated pixels."""
    y, x = np.mgrid[0:72, 0:96]
    img = np.stack([x * 255 // 95, y * 255 // 71, (x + y) % 256], -1).astype(np.float64)
    img[20:50, 30:70] = [200, 40, 90]
    img[5:15, 5:25] = 255
    img[60:, 80:] = 0
    img += np.random.RandomState(0).randint(-20, 21, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", C.CORRUPTION_NAMES)
def test_each_corruption_equals_the_reference_package_for_the_same_seed(reference, name) -> None:
    img = fixed_image()
    for severity in C.SEVERITIES:
        seed = C.image_seed(139, name, severity)
        np.random.seed(seed)
        want = np.uint8(getattr(reference, name)(__import__("PIL.Image").Image.fromarray(img), severity))
        got = C.corrupt(img, name, severity, seed)
        assert got.dtype == np.uint8 and got.shape == img.shape
        assert np.array_equal(got, want), f"{name} severity {severity}: {int((got != want).sum())} values differ"


def test_the_reference_changes_only_the_image_where_it_should(reference) -> None:
    img = fixed_image()
    for name in C.CORRUPTION_NAMES:
        assert not np.array_equal(C.corrupt(img, name, 3, 1), img), name  # every corruption changes the image


def test_a_corruption_is_seeded_per_image_and_leaves_the_global_random_state_alone() -> None:
    img = fixed_image()
    c = C.Corruption("impulse_noise", 4)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a, b = c.apply(img, 7), c.apply(img, 7)
    assert np.array_equal(np.random.get_state()[1], before)  # the caller's draws are not disturbed
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c.apply(img, 8))  # another image id, other noise
    assert not np.array_equal(a, C.Corruption("impulse_noise", 5).apply(img, 7))
    assert C.image_seed(7, "impulse_noise", 4) != C.image_seed(7, "gaussian_noise", 4)
    assert C.image_seed(7, "impulse_noise", 4) != C.image_seed(7, "impulse_noise", 5)
    digest = __import__("hashlib").sha256(b"7|impulse_noise|4").digest()  # the documented seed
    assert C.image_seed(7, "impulse_noise", 4) == int.from_bytes(digest[:4], "little")


def test_glass_blur_replays_the_reference_pixel_loop() -> None:
    """panbench's index-map shuffle against the package's loop on numpy views, written out here (it
    needs no package): pixel (h', w') is copied to (h, w)."""
    from skimage.filters import gaussian

    img = fixed_image()
    for severity in (1, 4):
        sigma, delta, iterations = [(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)][severity - 1]
        np.random.seed(5)
        x = np.uint8(gaussian(img / 255., sigma=sigma, channel_axis=-1) * 255)
        for _ in range(iterations):
            for h in range(x.shape[0] - delta, delta, -1):
                for w in range(x.shape[1] - delta, delta, -1):
                    dx, dy = np.random.randint(-delta, delta, size=(2,))
                    h_prime, w_prime = h + dy, w + dx
                    x[h, w], x[h_prime, w_prime] = x[h_prime, w_prime], x[h, w]
        want = np.uint8(np.clip(gaussian(x / 255., sigma=sigma, channel_axis=-1), 0, 1) * 255)
        assert np.array_equal(C.corrupt(img, "glass_blur", severity, 5), want)


def test_unknown_names_and_severities_are_one_line_errors_with_the_fix() -> None:
    with pytest.raises(InputError, match="did you mean glass_blur.*choose one of gaussian_noise"):
        C.corruption_of("glas_blur", 3)
    with pytest.raises(InputError, match="severity is 1, 2, 3, 4 or 5"):
        C.corruption_of("fog", 6)
    with pytest.raises(InputError, match="needs --severity"):
        C.corruption_of("fog", None)
    with pytest.raises(InputError, match="goes with --corruption"):
        C.corruption_of(None, 2)
    assert C.corruption_of(None, None) is None
    with pytest.raises(InputError, match="did you mean fog"):
        C.parse_names("noise,fgo")
    with pytest.raises(InputError, match="severity is 1, 2, 3, 4 or 5"):
        C.parse_severities("0-2")


def test_groups_lists_and_ranges_select_corruptions_in_the_reference_order() -> None:
    assert C.parse_names("all") == list(C.CORRUPTION_NAMES) and len(C.CORRUPTION_NAMES) == 15
    assert C.parse_names("fog,noise") == ["gaussian_noise", "shot_noise", "impulse_noise", "fog"]
    assert C.parse_names("digital") == ["contrast", "elastic_transform", "pixelate", "jpeg_compression"]
    assert C.parse_severities("1-5") == [1, 2, 3, 4, 5] and C.parse_severities("5,1,3") == [1, 3, 5]


def test_a_corruption_of_the_package_without_the_package_names_the_install_command(monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == C.PACKAGE else real(n, *a))
    with pytest.raises(InputError, match=r"needs the imagecorruptions package.*pip install --no-deps "
                                         r"imagecorruptions==1\.1\.2"):
        C.corruption_of("frost", 2)
    assert C.corruption_of("glass_blur", 2) == C.Corruption("glass_blur", 2)  # computed by panbench

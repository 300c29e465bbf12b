"""The 15 common corruptions of Hendrycks & Dietterich (2019) at severities 1-5 as the ``imagecorruptions`` package
(1.1.2, behind COCO-C and Cityscapes-C) computes them on an RGB ``uint8`` image, seeded per image (:func:`image_seed`,
the global ``np.random`` state restored afterwards).  Twelve call the package's own functions; three (:data:`OWN`)
fail or lose their seed on numpy 2 and scikit-image >= 0.19 and are computed here, bit for bit the package's output
where it runs (docs/robustness.md, "The corruption implementation")."""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import importlib.util
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from panbench.errors import InputError

CORRUPTION_GROUPS: dict[str, tuple[str, ...]] = {  # the package's get_corruption_names(group), in its order
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"),
    "weather": ("snow", "frost", "fog", "brightness"),
    "digital": ("contrast", "elastic_transform", "pixelate", "jpeg_compression"),
}
CORRUPTION_NAMES: tuple[str, ...] = tuple(n for names in CORRUPTION_GROUPS.values() for n in names)
GROUP_OF = {n: g for g, names in CORRUPTION_GROUPS.items() for n in names}
SEVERITIES = (1, 2, 3, 4, 5)
PACKAGE = "imagecorruptions"
PACKAGE_VERSION = "1.1.2"
INSTALL = f"pip install --no-deps {PACKAGE}=={PACKAGE_VERSION}"  # its other requirements are panbench's
OWN = ("glass_blur", "fog", "impulse_noise")  # computed here; the others by the package


def implementation(name: str) -> str:
    """What computes ``name``, as records and cache keys name it."""
    if name in OWN:
        return f"panbench (the {name} of {PACKAGE} {PACKAGE_VERSION}, equal outputs)"
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{PACKAGE} {version(PACKAGE)}"
    except PackageNotFoundError:
        return f"{PACKAGE} (not installed)"


@dataclass(frozen=True)
class Corruption:
    """One corruption at one severity, as ``--corruption NAME --severity S`` give it."""

    name: str
    severity: int

    @property
    def label(self) -> str:
        """How records and tables name it: ``fog-3``."""
        return f"{self.name}-{self.severity}"

    @property
    def group(self) -> str:
        return GROUP_OF[self.name]

    def apply(self, img: np.ndarray, image_id: Any) -> np.ndarray:
        """``img`` (H x W x 3 RGB uint8) corrupted, seeded by the image id."""
        return corrupt(img, self.name, self.severity, image_seed(image_id, self.name, self.severity))


def corruption_of(name: str | None, severity: int | None) -> Corruption | None:
    """``--corruption NAME --severity S`` checked (None without them); the modules preloaded."""
    if name is None and severity is None:
        return None
    if name is None:
        raise InputError(f"--severity {severity} goes with --corruption NAME (one of {', '.join(CORRUPTION_NAMES)})")
    name = check_name(name)
    if severity is None:
        raise InputError(f"--corruption {name} needs --severity S (1 to 5)")
    require_package(name)
    c = Corruption(name, check_severity(severity))
    preload([name])
    return c


def preload(names: list[str]) -> None:
    """Load the modules the corruptions use before the workers fork (scikit-image and scipy load lazily: half a
    second); no OpenCV here: its thread pool, once started, can hang a forked process."""
    from skimage.color import rgb2hsv
    from skimage.filters import gaussian

    tiny = np.zeros((8, 8, 3))
    gaussian(tiny, sigma=1, channel_axis=-1)
    rgb2hsv(tiny)
    if any(n not in OWN for n in names):
        from imagecorruptions import corruptions  # noqa: F401
        from scipy.ndimage import map_coordinates, zoom

        zoom(tiny, (1.5, 1.5, 1), order=1)
        map_coordinates(tiny, np.zeros((3, 1)), order=1)


def check_name(name: str) -> str:
    """A corruption name, or a one-line error with the list and the closest name."""
    if name in CORRUPTION_NAMES:
        return name
    close = difflib.get_close_matches(name, CORRUPTION_NAMES, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise InputError(f"--corruption {name}: unknown corruption; {hint}choose one of {', '.join(CORRUPTION_NAMES)}")


def check_severity(severity: int) -> int:
    if severity not in SEVERITIES:
        raise InputError(f"--severity {severity}: a corruption's severity is 1, 2, 3, 4 or 5")
    return severity


def parse_names(text: str) -> list[str]:
    """``--corruptions``: ``all``, a group or a comma list of groups and names; in the package's order, each once."""
    named = {"all": CORRUPTION_NAMES, **CORRUPTION_GROUPS, **{n: (n,) for n in CORRUPTION_NAMES}}
    chosen: set[str] = set()
    for part in (p.strip() for p in text.split(",")):
        if part in named:
            chosen.update(named[part])
        elif part:
            close = difflib.get_close_matches(part, list(named), n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise InputError(f"--corruptions {part}: unknown corruption or group; {hint}choose from {', '.join(named)}")
    if not chosen:
        raise InputError(f"--corruptions {text!r}: name at least one corruption or group (e.g. all, noise, fog)")
    return [n for n in CORRUPTION_NAMES if n in chosen]


DEMO_SEVERITIES = "3"  # the demo set's default: 15 runs per model, a few minutes on two cores (docs/robustness.md)


def parse_severities(text: str) -> list[int]:
    """``--severities``: ``1-5``, ``3`` or ``1,3,5``."""
    out: set[int] = set()
    try:
        for part in (p.strip() for p in text.split(",") if p.strip()):
            lo, sep, hi = part.partition("-")
            out.update(range(int(lo), int(hi) + 1) if sep else [int(lo)])
    except ValueError:
        raise InputError(f"--severities {text}: expected severities 1-5 as a range or list (1-5, 3, 1,3,5)") from None
    if not out or not out <= set(SEVERITIES):
        raise InputError(f"--severities {text}: a corruption's severity is 1, 2, 3, 4 or 5 (e.g. 1-5 or 1,3,5)")
    return sorted(out)


def image_seed(image_id: Any, name: str, severity: int) -> int:
    """The seed of one image's corruption: the first 4 bytes of sha256("image_id|name|severity")."""
    return int.from_bytes(hashlib.sha256(f"{image_id}|{name}|{severity}".encode()).digest()[:4], "little")


def require_package(name: str) -> None:
    """A corruption that calls the package, without the package: a one-line error with the install command."""
    if name not in OWN and importlib.util.find_spec(PACKAGE) is None:
        raise InputError(f"--corruption {name} needs the {PACKAGE} package ({PACKAGE_VERSION}, the COCO-C "
                         f"implementation), which is not installed: {INSTALL}")


_GLOBAL_RNG = threading.Lock()


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[np.random.RandomState]:
    """``np.random`` seeded with ``seed`` for the block (one at a time), then restored; yields the RandomState."""
    with _GLOBAL_RNG:
        state = np.random.get_state()
        np.random.seed(seed)
        try:
            yield np.random.mtrand._rand
        finally:
            np.random.set_state(state)


def corrupt(img: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    """The package's ``corrupt(img, severity, name)`` under ``np.random.seed(seed)``: uint8 out."""
    check_name(name)
    check_severity(severity)
    img = np.ascontiguousarray(img)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"corrupt: expected an H x W x 3 uint8 RGB image, got {img.dtype} {img.shape}")
    with seeded(seed) as rng:
        if name in OWN:
            out = {"glass_blur": glass_blur, "fog": fog, "impulse_noise": impulse_noise}[name](img, severity, rng)
        else:
            require_package(name)
            from imagecorruptions import corruptions as ref
            from PIL import Image

            out = getattr(ref, name)(Image.fromarray(img), severity)
    return cast(np.ndarray, np.uint8(out))  # the package's conversion: truncation of the clipped floats


def glass_blur(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """The package's ``glass_blur`` with ``channel_axis``, its pixel swaps replayed on an index map."""
    from skimage.filters import gaussian

    sigma, delta, iterations = [(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)][severity - 1]
    x = cast(np.ndarray, np.uint8(gaussian(np.array(x) / 255., sigma=sigma, channel_axis=-1) * 255))
    h, w = x.shape[:2]
    rows, cols = range(h - delta, delta, -1), range(w - delta, delta, -1)
    src = list(range(h * w))  # src[p]: the pixel of the blurred image that position p holds
    for _ in range(iterations):
        # one (dx, dy) per pixel, drawn in the package's order: a batched draw of the legacy
        # RandomState.randint gives the numbers that one draw of two per pixel gives
        draws = iter(rng.randint(-delta, delta, size=(len(rows) * len(cols), 2)).tolist())
        for r in rows:
            base = r * w
            for c in cols:
                dx, dy = next(draws)
                src[base + c] = src[(r + dy) * w + c + dx]  # x[h, w] = x[h', w']: the views' assignment
    x = x.reshape(h * w, -1)[np.asarray(src)].reshape(h, w, -1)
    return np.clip(gaussian(x / 255., sigma=sigma, channel_axis=-1), 0, 1) * 255


def plasma_fractal(mapsize: int, wibbledecay: float, rng: np.random.RandomState) -> np.ndarray:
    """The package's diamond-square plasma fractal in [0, 1] (``np.float64`` for ``np.float_``)."""
    assert mapsize & (mapsize - 1) == 0
    maparray = np.empty((mapsize, mapsize), dtype=np.float64)
    maparray[0, 0] = 0
    stepsize = mapsize
    wibble = 100.0

    def wibbledmean(array: np.ndarray) -> np.ndarray:
        return array / 4 + wibble * rng.uniform(-wibble, wibble, array.shape)

    while stepsize >= 2:
        # fill squares
        cornerref = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        squareaccum = cornerref + np.roll(cornerref, shift=-1, axis=0)
        squareaccum += np.roll(squareaccum, shift=-1, axis=1)
        half = stepsize // 2
        maparray[half:mapsize:stepsize, half:mapsize:stepsize] = wibbledmean(squareaccum)
        # fill diamonds
        drgrid = maparray[half:mapsize:stepsize, half:mapsize:stepsize]
        ulgrid = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        ltsum = drgrid + np.roll(drgrid, 1, axis=0) + (ulgrid + np.roll(ulgrid, -1, axis=1))
        maparray[0:mapsize:stepsize, half:mapsize:stepsize] = wibbledmean(ltsum)
        ttsum = drgrid + np.roll(drgrid, 1, axis=1) + (ulgrid + np.roll(ulgrid, -1, axis=0))
        maparray[half:mapsize:stepsize, 0:mapsize:stepsize] = wibbledmean(ttsum)
        stepsize //= 2
        wibble /= wibbledecay
    maparray -= maparray.min()
    return maparray / maparray.max()


def fog(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """The package's ``fog`` (its plasma fractal in ``np.float64``)."""
    c = [(1.5, 2), (2., 2), (2.5, 1.7), (2.5, 1.5), (3., 1.4)][severity - 1]
    shape = np.array(x).shape
    map_size = 1 << (int(np.max(shape)) - 1).bit_length()  # the package's next_power_of_2
    x = np.array(x) / 255.
    max_val = x.max()
    x += c[0] * plasma_fractal(map_size, c[1], rng)[:shape[0], :shape[1]][..., np.newaxis]
    return np.clip(x * max_val / (max_val + c[0]), 0, 1) * 255


def impulse_noise(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """The package's ``impulse_noise`` with scikit-image 0.18's salt-and-pepper draws from the seeded state."""
    amount = [.03, .06, .09, 0.17, 0.27][severity - 1]
    out = np.array(x) / 255.
    flipped = rng.choice([True, False], size=out.shape, p=[amount, 1 - amount])
    salted = rng.choice([True, False], size=out.shape, p=[0.5, 0.5])
    out[flipped & salted] = 1
    out[flipped & ~salted] = 0  # low_clip: 0 for an image without negative values
    return np.clip(out, 0, 1) * 255

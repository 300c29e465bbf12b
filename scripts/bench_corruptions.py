"""The cost of each corruption per image: panbench's (panbench.robustness.corruptions.corrupt) beside the
imagecorruptions package's own function, on the same image, seed and severity, in one run.

Both sides do the same work and give the same output (checked here on every call): the twelve corruptions
panbench takes from the package run the package's function on both sides (the ratio shows the seeding and
conversion overhead only); glass_blur, fog and impulse_noise run the package's code with the three changes
that let it run on the pinned stack (tests/robustness/test_corruptions.py), against panbench's versions.

    python scripts/bench_corruptions.py [--image IMG] [--severity S] [--repeat N]

Needs the package: pip install --no-deps imagecorruptions==1.1.2.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from panbench.robustness import corruptions as C  # noqa: E402

SALT_AND_PEPPER_018 = '''
def _random_noise_018(image, amount, salt_vs_pepper=0.5):
    out = image.copy()
    flipped = np.random.choice([True, False], size=image.shape, p=[amount, 1 - amount])
    salted = np.random.choice([True, False], size=image.shape, p=[salt_vs_pepper, 1 - salt_vs_pepper])
    out[flipped & salted] = 1
    out[flipped & ~salted] = 0
    return np.clip(out, 0, 1.0)
'''


def reference() -> types.ModuleType:
    spec = importlib.util.find_spec(C.PACKAGE)
    if spec is None:
        sys.exit(f"bench_corruptions: needs the reference package: {C.INSTALL}")
    path = f"{spec.submodule_search_locations[0]}/corruptions.py"
    src = open(path).read()
    for old, new in [("multichannel=True", "channel_axis=-1"), ("np.float_", "np.float64"),
                     ("sk.util.random_noise(np.array(x) / 255., mode='s&p', amount=c)",
                      "_random_noise_018(np.array(x) / 255., amount=c)")]:
        src = src.replace(old, new)
    mod = types.ModuleType("imagecorruptions.corruptions")
    mod.__file__ = path
    exec(compile(src + SALT_AND_PEPPER_018, path, "exec"), mod.__dict__)
    return mod


def main() -> None:
    from PIL import Image

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = Path(__file__).resolve().parents[2] / "shared/data/coco-panoptic-val2017-sample/val2017"
    ap.add_argument("--image", help=f"an image (default: the first of {default})")
    ap.add_argument("--severity", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    path = Path(args.image) if args.image else sorted(default.glob("*.jpg"))[0]
    img = np.asarray(Image.open(path).convert("RGB"))
    ref = reference()
    print(f"{path.name} {img.shape[1]}x{img.shape[0]}, severity {args.severity}, best of {args.repeat}")
    print(f"{'corruption':18} {'reference ms':>12} {'panbench ms':>12} {'ratio':>7}  computed by")
    for name in C.CORRUPTION_NAMES:
        seed = C.image_seed(0, name, args.severity)
        t_ref, t_pb = [], []
        for _ in range(args.repeat):
            np.random.seed(seed)
            t = time.perf_counter()
            want = np.uint8(getattr(ref, name)(Image.fromarray(img), args.severity))
            t_ref.append(time.perf_counter() - t)
            t = time.perf_counter()
            got = C.corrupt(img, name, args.severity, seed)
            t_pb.append(time.perf_counter() - t)
            assert np.array_equal(got, want), name
        r, p = 1000 * min(t_ref), 1000 * min(t_pb)
        print(f"{name:18} {r:12.1f} {p:12.1f} {r / p:7.2f}  {'panbench' if name in C.OWN else 'the package'}")


if __name__ == "__main__":
    main()

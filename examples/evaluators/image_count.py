"""An evaluator of your own: the images and the ground-truth segments a run saw.

    panbench eval --model demo-mask2former --dataset demo --evaluator examples/evaluators/image_count.py:ImageCount

Its fields land in the record as ``"evaluators": {"ImageCount": {"images": ..., "gt_segments": ...}}``."""


class ImageCount:
    name, version = "ImageCount", "1"  # the record's key; the resume cache keeps its shares by both
    needs = {"segments"}  # what it reads of an image: score keeps its C path (no id maps decoded for it)

    def reset(self) -> None:
        self.images = self.gt_segments = 0

    def process(self, image) -> dict:  # one image's share (JSON), computed without changing the state
        return {"gt_segments": len(image.gt_segments)}

    def add(self, share: dict) -> None:  # a share just made, or read back from the resume cache
        self.images += 1
        self.gt_segments += share["gt_segments"]

    def merge(self, other: "ImageCount") -> None:  # another process's or rank's images
        self.images += other.images
        self.gt_segments += other.gt_segments

    def evaluate(self) -> dict:
        return {"images": self.images, "gt_segments": self.gt_segments}

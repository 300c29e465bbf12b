"""The label sets of real transformers checkpoints of other datasets than COCO, for random-weight models saved with
them (tests/data/test_dataset_checkpoints.py).  transformers' conversion scripts (e.g. convert_mask2former_original_
pytorch_checkpoint_to_pytorch.py) write a checkpoint's id2label from huggingface/label-files: ``ade20k-id2label.json``
(each ADE20K class's first objectInfo150 name, in the semantic order: 0 = wall), ``cityscapes-id2label.json`` (the 19
train ids) and ``mapillary-vistas-id2label.json`` (Vistas v1.2's 65 readable names, id - 1)."""

from __future__ import annotations

# huggingface/label-files ade20k-id2label.json, label id = list index ("bed " with its space, as the file has it)
ADE20K_HUB = [
    'wall', 'building', 'sky', 'floor', 'tree', 'ceiling', 'road', 'bed ', 'windowpane', 'grass', 'cabinet',
    'sidewalk', 'person', 'earth', 'door', 'table', 'mountain', 'plant', 'curtain', 'chair', 'car', 'water',
    'painting', 'sofa', 'shelf', 'house', 'sea', 'mirror', 'rug', 'field', 'armchair', 'seat', 'fence', 'desk',
    'rock', 'wardrobe', 'lamp', 'bathtub', 'railing', 'cushion', 'base', 'box', 'column', 'signboard',
    'chest of drawers', 'counter', 'sand', 'sink', 'skyscraper', 'fireplace', 'refrigerator', 'grandstand', 'path',
    'stairs', 'runway', 'case', 'pool table', 'pillow', 'screen door', 'stairway', 'river', 'bridge', 'bookcase',
    'blind', 'coffee table', 'toilet', 'flower', 'book', 'hill', 'bench', 'countertop', 'stove', 'palm',
    'kitchen island', 'computer', 'swivel chair', 'boat', 'bar', 'arcade machine', 'hovel', 'bus', 'towel', 'light',
    'truck', 'tower', 'chandelier', 'awning', 'streetlight', 'booth', 'television receiver', 'airplane',
    'dirt track', 'apparel', 'pole', 'land', 'bannister', 'escalator', 'ottoman', 'bottle', 'buffet', 'poster',
    'stage', 'van', 'ship', 'fountain', 'conveyer belt', 'canopy', 'washer', 'plaything', 'swimming pool', 'stool',
    'barrel', 'basket', 'waterfall', 'tent', 'bag', 'minibike', 'cradle', 'oven', 'ball', 'food', 'step', 'tank',
    'trade name', 'microwave', 'pot', 'animal', 'bicycle', 'lake', 'dishwasher', 'screen', 'blanket', 'sculpture',
    'hood', 'sconce', 'vase', 'traffic light', 'tray', 'ashcan', 'fan', 'pier', 'crt screen', 'plate', 'monitor',
    'bulletin board', 'shower', 'radiator', 'glass', 'clock', 'flag',
]
assert len(ADE20K_HUB) == 150


def cityscapes_hub() -> list[str]:
    """cityscapes-id2label.json: the labels of train ids 0-18 (cityscapesscripts' names), in train-id order."""
    from cityscapesscripts.helpers.labels import labels

    return [lab.name for lab in sorted((lab for lab in labels if 0 <= lab.trainId < 19), key=lambda lab: lab.trainId)]

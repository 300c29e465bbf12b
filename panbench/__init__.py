"""panbench: how panoptic segmentation models really compare."""

__version__ = "0.1.0"

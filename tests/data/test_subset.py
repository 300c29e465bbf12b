"""--subset: an image listed twice is selected and scored once, with a one-line note."""

from __future__ import annotations

from panbench.data.datasets import load_dataset, read_subset


def test_a_repeated_id_is_selected_once_with_a_note(tmp_path, capsys) -> None:
    f = tmp_path / "subset.txt"
    f.write_text("2000\n2000  # again\n2001\n")
    assert read_subset(f) == [2000, 2001]
    err = capsys.readouterr().err
    assert "1 repeated image id(s) (first: 2000) counted once; 2 images selected" in err and f.name in err


def test_the_demo_set_with_a_repeated_subset_id_has_each_image_once(demo_root, tmp_path) -> None:
    first = load_dataset(demo_root, name="demo").image_ids[:2]
    f = tmp_path / "subset.txt"
    f.write_text(f"{first[0]}\n{first[0]}\n{first[1]}\n")
    assert load_dataset(demo_root, name="demo", subset=f).image_ids == first

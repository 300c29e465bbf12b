"""`panbench compare`'s refusal of an interval from too few resamples or images reads as a sentence: 'these 12
images', not 'these 12 image(s)'."""

from __future__ import annotations

from test_analysis_cli import _name, _write

from panbench.cli import main


def test_too_few_resamples_names_the_images_in_plain_words(tmp_path, capsys) -> None:
    res = tmp_path / "res"
    files = _write(tmp_path / "data")
    _name(files, capsys, res, "sys-a", 0)
    _name(files, capsys, res, "sys-b", 1)
    assert main(["compare", "sys-a", "sys-b", "--resamples", "10", "--results", str(res)]) == 2
    err = capsys.readouterr().err
    assert "on these 12 images, which says nothing about other images" in err and "image(s)" not in err, err

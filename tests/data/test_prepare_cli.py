"""``bridgenet prepare-data``: the commands end to end on tiny folders, and their errors."""

import pytest
from typer.testing import CliRunner

from bridgenet_cli.cli.app import app, main
from bridgenet_cli.data.cache import read_header
from tests.data import formats

runner = CliRunner()
SUBCOMMANDS = ["nyud", "pascal", "cityscapes", "synthetic", "verify", "benchmark", "export-folder"]


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_has_help_with_an_example(name):
    result = runner.invoke(app, ["prepare-data", name, "--help"])

    assert result.exit_code == 0, result.output
    assert "bridgenet prepare-data" in result.output


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as stopped:
        main([*argv])
    captured = capsys.readouterr()
    return stopped.value.code, captured.out, captured.err


def test_prepare_nyud_then_verify(tmp_path):
    formats.write_nyud(tmp_path / "nyud", "nyud_mt", {"train": ["a", "b"], "val": ["c"]})
    out = tmp_path / "caches" / "nyud.h5"

    result = runner.invoke(
        app,
        ["prepare-data", "nyud", "--root", str(tmp_path / "nyud"), "--out", str(out)]
        + ["--workers", "1", "--verify"],
    )

    assert result.exit_code == 0, result.output
    assert f"wrote {out} (train 2, val 1)" in result.output
    assert f"verified {out}: 3 samples, no problems" in result.output
    assert read_header(out).variant == "nyud_mt"

    result = runner.invoke(app, ["prepare-data", "verify", str(out)])
    assert result.exit_code == 0, result.output
    assert "nyud (nyud_mt), train 2, val 1: no problems" in result.output


def test_prepare_goes_to_the_data_directory_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv("BRIDGENET_DATA", str(tmp_path / "data"))
    formats.write_cityscapes(tmp_path / "city", {"train": ["x_1_2"], "val": ["x_3_4"]})

    result = runner.invoke(
        app,
        ["prepare-data", "cityscapes", "--root", str(tmp_path / "city"), "--size", "6x8"]
        + ["--depth", "metres", "--workers", "1"],
    )

    assert result.exit_code == 0, result.output
    header = read_header(tmp_path / "data" / "cityscapes.h5")
    assert header.depth_unit == "metres"
    assert header.settings == {"size": [6, 8], "depth": "metres"}
    assert "--size 6x8 --depth metres" in header.prepare_command


def test_prepare_synthetic(tmp_path):
    out = tmp_path / "s.h5"
    argv = ["prepare-data", "synthetic", "--num-train", "2", "--num-val", "1"]
    argv += ["--height", "32", "--width", "40", "--seed", "3", "--out", str(out), "--workers", "1"]

    result = runner.invoke(app, argv)

    assert result.exit_code == 0, result.output
    header = read_header(out)
    assert header.settings["seed"] == 3 and header.compression == "small"
    assert header.tasks == ("semseg", "human_parts", "depth", "normals", "saliency", "edge")


def test_errors_are_one_line_with_the_fix(tmp_path, capsys):
    formats.write_nyud(tmp_path / "nyud", "nyudv2", {"train": ["a"], "val": ["b"]})
    (tmp_path / "nyud" / "gt_sets" / "val.txt").unlink()

    code, _, err = run_main(
        ["prepare-data", "nyud", "--root", str(tmp_path / "nyud"), "--out", str(tmp_path / "n.h5")],
        capsys,
    )

    assert code == 2
    assert "error: nyud folder" in err and "has no split file gt_sets/val.txt" in err
    assert "Traceback" not in err


def test_bad_size_option(tmp_path, capsys):
    code, _, err = run_main(
        ["prepare-data", "cityscapes", "--root", str(tmp_path), "--size", "384by768"], capsys
    )

    assert code == 2
    assert "bad --size '384by768'" in err and "HEIGHTxWIDTH" in err


def test_benchmark_and_export_folder(tmp_path):
    folder = tmp_path / "fake"
    result = runner.invoke(
        app,
        ["prepare-data", "export-folder", "--out", str(folder), "--num-train", "1"]
        + ["--num-val", "3", "--height", "24", "--width", "32"],
    )
    assert result.exit_code == 0, result.output

    result = runner.invoke(
        app,
        ["prepare-data", "benchmark", "nyud", "--root", str(folder), "--samples", "3"]
        + ["--repeat", "1"],
    )

    assert result.exit_code == 0, result.output
    assert "nyud val, 3 samples of 24x32, tasks semseg,depth,normals,edge" in result.output
    assert "raw folder" in result.output and "speed-up" in result.output
    assert not list(folder.glob("*.h5"))  # the benchmark's cache went elsewhere

"""The local JVM's class archive: built whole or not at all, found by every local JVM, and its
options reach the JVM whole as Spark's launcher splits them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyspark
import pytest

from b3_quotes.deploy import class_archive
from b3_quotes.local_mode.spark import CLASS_ARCHIVE, LOG_CONFIG, find_java, jvm_options
from tests.conftest import REPO

SPARK_HOME = Path(pyspark.__file__).parent


def launched_java_options(java_options: str) -> list[str]:
    """The driver JVM's command line Spark's own launcher builds for these extraJavaOptions."""
    env = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_SCALA_VERSION": "2.12"}
    out = subprocess.run([str(find_java()), "-cp", str(SPARK_HOME / "jars" / "*"), "org.apache.spark.launcher.Main",
                          "org.apache.spark.deploy.SparkSubmit", "--conf",
                          f"spark.driver.extraJavaOptions={java_options}", "pyspark-shell"],
                         env=env, capture_output=True, check=True).stdout
    return out.decode().split("\0")


def test_options_with_spaces_and_quotes_reach_the_jvm_whole(tmp_path):
    archive = tmp_path / 'My "Documents" \\ venv' / "spark-classes.jsa"
    archive.parent.mkdir()
    archive.write_bytes(b"archive")
    command = launched_java_options(jvm_options(archive))
    assert f"-XX:SharedArchiveFile={archive}" in command
    assert f"-Dlog4j2.configurationFile={LOG_CONFIG.as_uri()}" in command
    assert {"-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xlog:cds*=off"} <= set(command)


def test_no_archive_file_no_archive_option_and_a_build_writes_one_at_exit(tmp_path):
    assert "SharedArchiveFile" not in jvm_options(tmp_path / "absent.jsa")
    assert "-Xlog" not in jvm_options(tmp_path / "absent.jsa")  # nothing of the archive's without one
    command = launched_java_options(jvm_options(tmp_path / "absent.jsa", archive_at_exit=tmp_path / "new.jsa"))
    assert f"-XX:ArchiveClassesAtExit={tmp_path / 'new.jsa'}" in command
    assert not any("SharedArchiveFile" in word for word in command)


def test_the_test_jvm_maps_the_archive_make_built(spark):
    """`make` built the archive into this venv, this session's JVM was given it, and a JVM with
    this JVM's class path can use it (-Xshare:on refuses to start otherwise)."""
    jvm = spark.sparkContext._jvm
    assert CLASS_ARCHIVE.is_file(), f"no class archive at {CLASS_ARCHIVE}: make builds it (python -m b3_quotes.deploy.class_archive)"
    arguments = list(jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    assert f"-XX:SharedArchiveFile={CLASS_ARCHIVE}" in arguments
    class_path = jvm.java.lang.System.getProperty("java.class.path")
    check = [str(find_java()), "-Xshare:on", f"-XX:SharedArchiveFile={CLASS_ARCHIVE}", "-XX:+UseSerialGC"]
    assert subprocess.run([*check, "-cp", class_path, "-version"], capture_output=True).returncode == 0
    other = subprocess.run([*check, "-cp", f"{REPO}{os.pathsep}{class_path}", "-version"], capture_output=True, text=True)
    assert other.returncode != 0 and "shared" in other.stderr, other.stderr  # the check can fail


def test_the_makefile_builds_the_archive_where_the_jvm_looks():
    relative = CLASS_ARCHIVE.relative_to(sys.prefix).as_posix()
    assert f"ARCHIVE := $(VENV)/{relative}" in (REPO / "Makefile").read_text()


def fake_training(archive_bytes: bytes | None, exit_code: int):
    def train(archive_at_exit: Path, workdir: Path) -> int:
        # Hidden, never the final name, and beside it: the rename into place is atomic.
        assert archive_at_exit.name.startswith(".") and archive_at_exit.parent.name == "share" and workdir.is_dir()
        if archive_bytes is not None:
            archive_at_exit.write_bytes(archive_bytes)
        return exit_code
    return train


def test_a_clean_training_exit_renames_the_archive_into_place(tmp_path, monkeypatch):
    archive = tmp_path / "share" / "spark-classes.jsa"
    archive.parent.mkdir()
    (archive.parent / ".spark-classes.jsa.4242.tmp").write_bytes(b"half")  # a build killed mid-way
    monkeypatch.setattr(class_archive, "train", fake_training(b"\x01" * 4096, 0))
    said = class_archive.build(archive)
    assert archive.read_bytes() == b"\x01" * 4096
    assert said.startswith(f"class archive {archive} built in")
    assert os.listdir(archive.parent) == ["spark-classes.jsa"]


@pytest.mark.parametrize(("archive_bytes", "exit_code"), [(b"\x01" * 100, 1), (None, 0)])
def test_a_failed_training_leaves_no_archive_and_no_partial_file(tmp_path, monkeypatch, archive_bytes, exit_code):
    archive = tmp_path / "share" / "spark-classes.jsa"
    monkeypatch.setattr(class_archive, "train", fake_training(archive_bytes, exit_code))
    said = class_archive.build(archive)
    assert f"exited {exit_code} without an archive" in said
    assert os.listdir(archive.parent) == []


def test_no_java_says_so_and_builds_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(class_archive, "CLASS_ARCHIVE", tmp_path / "share" / "spark-classes.jsa")
    monkeypatch.setattr(class_archive, "find_java", lambda: None)
    monkeypatch.setattr(class_archive, "train", fake_training(b"x", 0))
    assert class_archive.main() == 0
    assert capsys.readouterr().out == "no Java: the local JVM will run without a class archive\n"
    assert os.listdir(tmp_path) == []


def test_a_training_that_raises_says_why_in_one_line_and_exits_0(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(class_archive, "CLASS_ARCHIVE", tmp_path / "share" / "spark-classes.jsa")

    def timed_out(archive_at_exit: Path, workdir: Path) -> int:
        raise subprocess.TimeoutExpired(["java"], 120)

    monkeypatch.setattr(class_archive, "train", timed_out)
    assert class_archive.main() == 0
    said = capsys.readouterr().out
    assert said.startswith("class archive not built (Command '['java']' timed out after 120 seconds)")
    assert said.count("\n") == 1 and os.listdir(tmp_path / "share") == []

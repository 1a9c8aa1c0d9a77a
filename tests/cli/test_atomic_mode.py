"""Files written atomically get the permissions a plain open() would give them."""

import os
from pathlib import Path

from cortexlang import atomic


def test_atomic_files_follow_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        target = tmp_path / "out.txt"
        atomic.write_text(target, "ok\n")
        assert target.read_text() == "ok\n"
        assert os.stat(target).st_mode & 0o777 == 0o644
    finally:
        os.umask(previous)

"""Point the ROS message wheels' exported CMake files at this interpreter's headers.

The PyPI ROS 2 wheels export the include paths of the machine that built them
(``/opt/python/cp311-cp311/include/python3.11`` and that machine's numpy). rosidl builds of our
own interfaces fail until they name this interpreter's Python and numpy include folders.
Idempotent; run with the venv's interpreter.
"""
from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path

import numpy


def main() -> int:
    prefix = Path(sys.prefix)
    py_inc = sysconfig.get_paths()["include"]
    np_inc = numpy.get_include()
    changed = 0
    for path in prefix.glob("share/*/cmake/*Export.cmake"):
        text = path.read_text()
        new = re.sub(r"/opt/python/cp\d+-cp\d+/include/python3\.\d+", py_inc, text)
        # the build machine's numpy, or this venv's before a numpy upgrade (1.x core/ -> 2.x _core/)
        new = re.sub(r"[^;\"\s]*/site-packages/numpy/_?core/include", np_inc, new)
        if new != text:
            path.write_text(new)
            changed += 1
    print(f"fixed include paths in {changed} exported CMake files under {prefix}/share")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Entry point of the standalone (PyInstaller) app: one program under two names.

The one-folder app holds two executables built from this script and sharing one
``_internal`` folder: ``dentseg-gui`` (a windowed program on Windows and macOS) and
``dentseg`` (a console program, so the command line prints and returns exit codes
on every OS). Which one runs is read from the executable's own name. Training runs
in a spawned child process; ``freeze_support`` lets the frozen program be that child.
"""

import multiprocessing
import sys
from pathlib import Path


def main() -> int:
    multiprocessing.freeze_support()
    name = Path(sys.executable).stem.lower()
    if name == "dentseg":
        from dentseg_gui.cli import main as cli_main
        return cli_main()
    from dentseg_gui.gui.app import main as gui_main
    return gui_main()


if __name__ == "__main__":
    sys.exit(main())

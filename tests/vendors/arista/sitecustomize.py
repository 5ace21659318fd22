"""Stand-in for EOS's flash (a closed runtime's file system): in the Python
that runs ztpd's arista.py, /mnt/flash is STANDIN_ROOT (see standin.py)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import standin  # noqa: E402

standin.redirect_paths("/mnt/flash")

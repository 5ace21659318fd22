"""Stand-in for NX-OS's /bootflash (closed runtime's file system): in the
Python that runs the POAP script, /bootflash is STANDIN_ROOT."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import standin  # noqa: E402

standin.redirect_paths("/bootflash")

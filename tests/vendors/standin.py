"""What every stand-in reads about the box it pretends to be, from the
environment tests/vendors.rs sets: STANDIN_SERIAL, STANDIN_MODEL,
STANDIN_MAC (aa:bb:cc:dd:ee:ff) and STANDIN_NEIGHBORS
("local_port,remote_device,remote_port;..."), and STANDIN_ROOT, the
directory that stands for the box's flash (/mnt/flash, /bootflash)."""
import os


def serial():
    return os.environ["STANDIN_SERIAL"]


def model():
    return os.environ["STANDIN_MODEL"]


def mac():
    return os.environ.get("STANDIN_MAC", "00:00:00:00:00:00")


def neighbors():
    out = []
    for item in os.environ.get("STANDIN_NEIGHBORS", "").split(";"):
        if item:
            local, dev, port = item.split(",")
            out.append((local, dev, port))
    return out


def root():
    return os.environ["STANDIN_ROOT"]


def redirect_paths(prefix):
    """Make `prefix` (e.g. /mnt/flash) name STANDIN_ROOT in this Python
    process: open, os.rename/replace/remove, os.path.exists/getsize. The box
    has that directory; the test machine has not and may not be root."""
    import builtins
    import os.path as osp

    real = root()

    def fix(p):
        if isinstance(p, str) and (p == prefix or p.startswith(prefix + "/")):
            return real + p[len(prefix):]
        return p

    open_ = builtins.open
    builtins.open = lambda f, *a, **k: open_(fix(f), *a, **k)
    for name in ("rename", "replace"):
        f = getattr(os, name)
        setattr(os, name, (lambda f: lambda a, b, *x, **k: f(fix(a), fix(b), *x, **k))(f))
    for mod, name in ((os, "remove"), (os, "unlink"), (os, "stat"), (osp, "exists"), (osp, "getsize"), (osp, "isfile")):
        f = getattr(mod, name)
        setattr(mod, name, (lambda f: lambda a, *x, **k: f(fix(a), *x, **k))(f))

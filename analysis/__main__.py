"""Entry point of `python3 -m analysis`.

The python3 first on PATH may be a separate interpreter without Debian's
python3-h5py, -numpy, -scipy and -matplotlib. When one of them cannot be
imported, the command re-executes itself, arguments unchanged, with the
interpreter that has them ($CTSWEEP_PYTHON if set, else /usr/bin/python3).
An environment variable marks the re-executed process so that it never
loops; if that one cannot import them either, one error line says so.
"""
import importlib
import os
import sys

REEXEC_MARK = "CTSWEEP_ANALYSIS_REEXEC"
CANDIDATES = ("CTSWEEP_PYTHON", "/usr/bin/python3")


def _missing_module():
    from analysis import REQUIRED_MODULES
    for name in REQUIRED_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            return name
    return None


def _candidates():
    for c in CANDIDATES:
        path = os.environ.get(c, "") if c.isupper() else c
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            yield path


def _reexec(missing):
    if os.environ.get(REEXEC_MARK):
        sys.stderr.write(f"analysis: error: {sys.executable} cannot import {missing}; install python3-h5py "
                         f"python3-numpy python3-scipy python3-matplotlib (scripts/bootstrap)\n")
        sys.exit(1)
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env[REEXEC_MARK] = "1"
    env["PYTHONPATH"] = pkg_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for cand in _candidates():
        try:
            os.execve(cand, [cand, "-m", "analysis"] + sys.argv[1:], env)
        except OSError:
            continue
    sys.stderr.write(f"analysis: error: {sys.executable} cannot import {missing} and no python3 with h5py, numpy, "
                     f"scipy and matplotlib was found (tried $CTSWEEP_PYTHON and /usr/bin/python3; run "
                     f"scripts/bootstrap)\n")
    sys.exit(1)


def main():
    missing = _missing_module()
    if missing:
        _reexec(missing)
    from analysis.cli import main as cli_main
    sys.exit(cli_main(sys.argv[1:]))


if __name__ == "__main__":
    main()

"""The library's layering: no nanotst module imports streamlit."""
import pkgutil
import subprocess
import sys

import nanotst

MODULES = sorted(m.name for m in pkgutil.iter_modules(nanotst.__path__) if m.name != "__main__")


def test_no_nanotst_module_imports_streamlit():
    code = ("import importlib, sys\n"
            f"for name in {MODULES!r}:\n"
            "    importlib.import_module('nanotst.' + name)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'streamlit'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
    assert "backtest" in MODULES and "metrics" in MODULES     # the list is the real package

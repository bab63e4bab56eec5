"""Installing from the checkout, the library-finding rule, OMP_WAIT_POLICY, the example."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import moestream
from conftest import CHECKOUT, PACKAGE_ROOT, TINY, child_env

PROBE = "import moestream, os; print(moestream.library_path()); print(os.environ.get('OMP_WAIT_POLICY'))"


def run_python(code: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                          cwd=cwd)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install`` of examples/python into a fresh folder: offline, no build isolation."""
    target = tmp_path_factory.mktemp("site")
    built = CHECKOUT / "build" / "lib" / "libmoestream.so.0"
    if not built.exists():
        pytest.skip(f"{built} not built")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation", "--no-deps",
               "--no-index", "--root-user-action=ignore", "--disable-pip-version-check",
               "--target", str(target), str(PACKAGE_ROOT)]
    env = child_env(MOESTREAM_LIBRARY=None, PIP_NO_CACHE_DIR="1")
    subprocess.run(command, check=True, env=env, timeout=300)
    return target


def test_install_records_the_built_library_and_header(installed: Path) -> None:
    package = installed / "moestream"
    assert (package / "moestream.h").read_text() == (CHECKOUT / "include" / "moestream.h").read_text()
    env = child_env(MOESTREAM_LIBRARY=None)
    env["PYTHONPATH"] = str(installed)
    result = run_python(PROBE, env, cwd=installed)
    assert result.returncode == 0, result.stderr
    library = result.stdout.splitlines()[0]
    assert Path(library).resolve() == (CHECKOUT / "build" / "lib" / "libmoestream.so.0").resolve()
    # The installed copy, not the checkout's source, was imported.
    where = run_python("import moestream; print(moestream.__file__)", env, cwd=installed)
    assert where.stdout.strip().startswith(str(installed))


def test_environment_variable_overrides(installed: Path) -> None:
    env = child_env(MOESTREAM_LIBRARY=str(installed / "missing" / "libmoestream.so"))
    env["PYTHONPATH"] = str(installed)
    result = run_python(PROBE, env, cwd=installed)
    assert result.returncode != 0
    assert "MOESTREAM_LIBRARY" in result.stderr and "missing" in result.stderr


def test_omp_wait_policy_is_passive_before_the_library_loads() -> None:
    # OMP_DISPLAY_ENV makes libgomp print the settings it read when it was loaded: this
    # checks what libgomp saw, not just os.environ.
    result = run_python(PROBE, child_env(OMP_WAIT_POLICY=None, OMP_DISPLAY_ENV="true"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1] == "passive"
    assert "OMP_WAIT_POLICY = 'PASSIVE'" in result.stderr


def test_omp_wait_policy_of_the_user_is_kept() -> None:
    result = run_python(PROBE, child_env(OMP_WAIT_POLICY="active", OMP_DISPLAY_ENV="true"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1] == "active"
    assert "OMP_WAIT_POLICY = 'ACTIVE'" in result.stderr


def test_example_program_generates() -> None:
    example = PACKAGE_ROOT / "generate.py"
    result = subprocess.run([sys.executable, str(example), "-m", str(TINY), "-p", "Hello", "-n", "8",
                             "--temp", "0", "--backend", "cpu"],
                            capture_output=True, text=True, env=child_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Hello") and len(result.stdout) > len("Hello\n")
    assert "decode:   8 tokens" in result.stderr
    failed = subprocess.run([sys.executable, str(example), "-m", str(TINY / "missing")],
                            capture_output=True, text=True, env=child_env(), timeout=120)
    assert failed.returncode == 1 and "error:" in failed.stderr


def test_version() -> None:
    assert moestream.library_version().count(".") == 2
    assert moestream.version() == moestream.__version__


def test_cmake_install_records_the_installed_library(tmp_path: Path) -> None:
    build = CHECKOUT / "build"
    cache = build / "CMakeCache.txt"
    if not cache.exists() or "MST_INSTALL_PYTHON:BOOL=ON" not in cache.read_text():
        pytest.skip("the build is not configured with MST_INSTALL_PYTHON (examples/python/CMakeLists.txt)")
    prefix = tmp_path / "prefix"
    subprocess.run(["cmake", "--install", str(build), "--prefix", str(prefix), "--component", "python"],
                   check=True, capture_output=True, timeout=120)
    configs = list(prefix.rglob("moestream/_build_config.py"))
    assert len(configs) == 1
    package = configs[0].parent
    assert (package / "moestream.h").is_file() and (package / "session.py").is_file()
    recorded = Path(configs[0].read_text().split("LIBRARY = ")[1].strip().strip("'"))
    assert recorded.parent.parent == prefix and recorded.name == "libmoestream.so.0"
    # The library itself is installed by the default component; put the built one there.
    recorded.parent.mkdir(parents=True, exist_ok=True)
    recorded.write_bytes((build / "lib" / "libmoestream.so.0").read_bytes())
    env = child_env(MOESTREAM_LIBRARY=None)
    env["PYTHONPATH"] = str(package.parent)
    code = (f"import moestream; print(moestream.library_path()); "
            f"print(moestream.Model({str(TINY)!r}, backend='cpu').tokenize('Hello world'))")
    result = run_python(code, env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    library, ids = result.stdout.splitlines()
    assert Path(library) == recorded
    assert ids == str(moestream.Model(TINY, backend="cpu").tokenize("Hello world"))

"""The plugin registry: discovery through entry points, failure isolation, lookups and options.

Broken third-party plugins are real distributions on disk: a ``*.dist-info`` directory with an
``entry_points.txt`` beside the plugin module, put on ``sys.path`` (in-process) or ``PYTHONPATH``
(for ``bench`` subprocesses). Nothing here trains or imports torch.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

import bench
from bench import hookimpl
from bench.core.registry import DISABLE_AUTOLOAD_ENV, Registry, factory_options
from bench.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

# distribution name -> (entry point name, module name, module source or None for a missing module)
FIXTURE_DISTS = {
    "bench-test-broken": ("broken", "bench_test_no_such_module", None),
    "bench-test-raising": ("raising", "bench_test_raising", """
        from bench import hookimpl

        @hookimpl
        def register_audio_encoders(register):
            register("raising-enc", lambda width=4: None)

        @hookimpl
        def register_datasets(register):
            raise RuntimeError("dataset index is corrupt\\nsecond line of detail")
    """),
    # Sorts before "bench": built-ins must still load first and keep their names.
    "aaa-dupe": ("dupe", "bench_test_dupe", """
        from bench import hookimpl

        @hookimpl
        def register_losses(register):
            register("ntxent", lambda: None)
            register("dupe-only", lambda: None)
    """),
    "bench-test-badsig": ("badsig", "bench_test_badsig", """
        from bench import hookimpl

        @hookimpl
        def register_losses(reg):  # the hookspec's argument is called `register`
            reg("badsig-loss", lambda: None)
    """),
    "bench-test-good": ("good", "bench_test_good", """
        from bench import hookimpl

        @hookimpl
        def register_losses(register):
            register("good-loss", build)

        def build(margin: float = 0.5, mode: str = "hard"):
            return ("good-loss", margin, mode)
    """),
}
FIXTURE_MODULES = [module for _, module, _ in FIXTURE_DISTS.values()]


def write_site(site: Path) -> Path:
    """Install the fixture distributions into ``site`` the way an installer lays them out."""
    site.mkdir(parents=True, exist_ok=True)
    for dist, (ep_name, module, source) in FIXTURE_DISTS.items():
        info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[bench]\n{ep_name} = {module}\n")
        if source is not None:
            (site / f"{module}.py").write_text(textwrap.dedent(source))
    return site


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = write_site(tmp_path / "site")
    monkeypatch.syspath_prepend(str(path))
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
    yield path
    for module in FIXTURE_MODULES:
        sys.modules.pop(module, None)


@pytest.fixture
def loaded(site: Path) -> Registry:
    registry = Registry()
    registry.load_entry_points()
    return registry


def _env(site: Path | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != DISABLE_AUTOLOAD_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(p) for p in (site, ROOT) if p is not None])
    env.update(extra)
    return env


def _bench(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], env=env, capture_output=True, text=True, timeout=120)


# ---- discovery through real entry points ------------------------------------------------------


def test_entry_point_failures_are_isolated(loaded: Registry) -> None:
    plugins = loaded.plugins
    broken = plugins["broken"]
    assert broken.distribution == "bench-test-broken" and broken.version == "1.0"
    assert broken.error == ("cannot load bench_test_no_such_module: ModuleNotFoundError: "
                            "No module named 'bench_test_no_such_module'")
    assert plugins["raising"].error == "register_datasets failed: RuntimeError: dataset index is corrupt"
    assert plugins["badsig"].error.startswith("cannot load bench_test_badsig: PluginValidationError")
    assert "\n" not in "".join(p.error or "" for p in plugins.values())
    # Every other plugin, built-in or not, is registered.
    assert plugins["good"].ok and ("loss", "good-loss") in plugins["good"].components
    assert plugins["ntxent"].ok and plugins["cnn"].ok
    assert {"ntxent", "triplet", "good-loss", "dupe-only"} <= set(loaded.names("loss"))
    assert "badsig-loss" not in loaded.names("loss")


def test_builtins_load_first_and_keep_their_names(loaded: Registry) -> None:
    dupe = loaded.plugins["dupe"]
    assert dupe.distribution == "aaa-dupe"
    assert dupe.error == ("duplicate loss name 'ntxent': already provided by bench "
                          f"{bench.__version__} (plugin ntxent); rename it")
    entry = loaded.get("loss", "ntxent")
    assert (entry.distribution, entry.plugin) == ("bench", "ntxent")
    assert loaded.get("loss", "dupe-only").distribution == "aaa-dupe"


def test_asking_for_a_broken_plugins_component_names_the_failure(loaded: Registry) -> None:
    # The component carries the plugin's name: the error is the plugin's own.
    with pytest.raises(ConfigError) as info:
        loaded.get("loss", "broken")
    message = str(info.value)
    assert "failed to load" in message and "bench-test-broken 1.0" in message
    assert "ModuleNotFoundError: No module named 'bench_test_no_such_module'" in message
    # Any other unknown name points to the failed plugins.
    with pytest.raises(ConfigError, match=r"Failed plugins \(see `bench ls`\): .*broken"):
        loaded.get("dataset", "raising-data")


def test_autoload_off_loads_only_builtins(site: Path) -> None:
    registry = Registry()
    registry.load_entry_points(autoload=False)
    assert {p.distribution for p in registry.plugins.values()} == {"bench"}
    assert all(p.ok for p in registry.plugins.values())
    assert "ntxent" in registry.names("loss") and "good-loss" not in registry.names("loss")


# ---- in-test plugin objects --------------------------------------------------------------------


class _Losses:
    def __init__(self, *names: str) -> None:
        self.names = names

    @hookimpl
    def register_losses(self, register) -> None:
        for name in self.names:
            register(name, lambda tau=0.1: ("loss", tau))


class _RaisingLater:
    @hookimpl
    def register_losses(self, register) -> None:
        register("partial-loss", lambda: None)
        raise ValueError("weights file missing")


def test_exception_inside_a_hook_fails_only_that_plugin() -> None:
    registry = Registry()
    first = registry.register_module(_Losses("first-loss"), "first", "dist-a", "1.0")
    bad = registry.register_module(_RaisingLater(), "bad", "dist-b", "2.0")
    after = registry.register_module(_Losses("after-loss"), "after", "dist-c", "3.0")
    assert first.ok and after.ok
    assert not bad.ok and bad.error == "register_losses failed: ValueError: weights file missing"
    assert {"first-loss", "after-loss"} <= set(registry.names("loss"))
    entry = registry.get("loss", "after-loss")
    assert entry.factory(**registry.resolve_options("loss", "after-loss", {"tau": 0.3})) == ("loss", 0.3)


def test_duplicate_name_fails_the_later_plugin_and_names_the_first() -> None:
    registry = Registry()
    registry.register_module(_Losses("shared"), "orig", "dist-orig", "1.2")
    later = registry.register_module(_Losses("shared", "own"), "later", "dist-later", "0.9")
    assert later.error == "duplicate loss name 'shared': already provided by dist-orig 1.2 (plugin orig); rename it"
    assert registry.get("loss", "shared").distribution == "dist-orig"
    assert registry.get("loss", "own").distribution == "dist-later"
    assert later.components == [("loss", "own")]


def test_register_needs_a_name_and_a_callable() -> None:
    class Bad:
        @hookimpl
        def register_datasets(self, register) -> None:
            register("", "not callable")

    registry = Registry()
    status = registry.register_module(Bad(), "bad")
    assert status.error.startswith("register_datasets failed: TypeError: register() needs a name and a callable")
    assert registry.names("dataset") == []


def test_plugin_objects_can_be_modules_or_namespaces() -> None:
    @hookimpl
    def register_datasets(register) -> None:
        register("ns-data", lambda size=8: SimpleNamespace(split=lambda name: [], size=size))

    registry = Registry()
    status = registry.register_module(SimpleNamespace(register_datasets=register_datasets), "ns")
    assert status.ok and status.components == [("dataset", "ns-data")]
    assert registry.build("dataset", "ns-data", {"size": 3}).size == 3


# ---- lookups and options -----------------------------------------------------------------------


@pytest.fixture
def builtins() -> Registry:
    registry = Registry()
    registry.load_entry_points(autoload=False)
    return registry


def test_unknown_name_lists_choices_and_suggests(builtins: Registry) -> None:
    with pytest.raises(ConfigError) as info:
        builtins.get("loss", "ntxnet")
    message = str(info.value)
    assert message.startswith("unknown loss 'ntxnet'; did you mean 'ntxent'?")
    assert "Available: distill, ntxent, triplet." in message
    assert "\n" not in message
    with pytest.raises(ConfigError, match="unknown component kind 'losses'; use one of audio_encoder"):
        builtins.get("losses", "ntxent")


def test_unknown_option_lists_valid_keys(builtins: Registry) -> None:
    with pytest.raises(ConfigError) as info:
        builtins.build("loss", "ntxent", {"taus": 0.1})
    message = str(info.value)
    assert "unknown option ntxent.taus for loss 'ntxent'" in message
    assert "Did you mean ntxent.tau?" in message
    assert message.endswith("Valid keys: learnable_tau, tau.")
    assert builtins.resolve_options("loss", "ntxent", {"tau": 0.2}) == {"tau": 0.2, "learnable_tau": False}


def test_required_option_is_reported() -> None:
    class Needs:
        @hookimpl
        def register_datasets(self, register) -> None:
            register("needs-root", lambda root, split_seed=0: SimpleNamespace(split=lambda name: [], root=root))

    registry = Registry()
    registry.register_module(Needs(), "needs")
    assert factory_options(registry.get("dataset", "needs-root").factory) == {
        "root": inspect.Parameter.empty, "split_seed": 0}
    with pytest.raises(ConfigError, match=r"dataset 'needs-root' needs --set needs-root.root=VALUE"):
        registry.build("dataset", "needs-root")
    assert registry.build("dataset", "needs-root", {"root": "/data"}).root == "/data"


def test_bench_load_builds_a_builtin_loss(monkeypatch: pytest.MonkeyPatch) -> None:
    loss = bench.load("loss", "ntxent", tau=0.07)
    assert type(loss).__name__ == "NTXentLoss" and loss._tau == pytest.approx(0.07)
    with pytest.raises(ConfigError, match="Valid keys: learnable_tau, tau"):
        bench.load("loss", "ntxent", temperature=0.07)
    with pytest.raises(ConfigError, match="did you mean 'triplet'"):
        bench.load("loss", "triplett")


# ---- the command line --------------------------------------------------------------------------


@pytest.mark.slow
def test_bench_ls_survives_broken_plugins(tmp_path: Path) -> None:
    site = write_site(tmp_path / "site")
    proc = _bench("ls", env=_env(site))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    failed = lines[lines.index("failed plugins:") + 1:]
    by_name = {line.split()[0]: line for line in failed}
    assert set(by_name) == {"broken", "raising", "dupe", "badsig"}
    assert by_name["broken"].split(None, 3)[1:3] == ["bench-test-broken", "1.0:"]
    assert by_name["broken"].endswith("ModuleNotFoundError: No module named 'bench_test_no_such_module'")
    assert "duplicate loss name 'ntxent': already provided by bench" in by_name["dupe"]
    # Working plugins are listed with their distribution; the built-in keeps ntxent.
    assert any(line.split() == ["good-loss", "bench-test-good", "1.0", "[good]"] for line in lines)
    assert any(line.split() == ["ntxent", "bench", bench.__version__] for line in lines)


@pytest.mark.slow
def test_bench_run_with_a_broken_plugins_component_is_a_one_line_error(tmp_path: Path) -> None:
    site = write_site(tmp_path / "site")
    proc = _bench("run", "--loss", "broken", "--results-dir", str(tmp_path / "r"), "--runs-dir",
                  str(tmp_path / "runs"), "--no-leaderboard", env=_env(site))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("bench run: error: loss 'broken' comes from plugin 'broken'")
    assert "ModuleNotFoundError" in proc.stderr
    assert not (tmp_path / "runs").exists(), "nothing is started for a config error"


@pytest.mark.slow
def test_disable_autoload_env_hides_third_party_plugins(tmp_path: Path) -> None:
    site = write_site(tmp_path / "site")
    proc = _bench("ls", env=_env(site, **{DISABLE_AUTOLOAD_ENV: "1"}))
    assert proc.returncode == 0, proc.stderr
    assert "failed plugins:" not in proc.stdout
    assert "good-loss" not in proc.stdout and "dupe-only" not in proc.stdout
    for builtin in ("cnn", "minilm", "ntxent", "synthetic"):
        assert any(line.split()[:2] == [builtin, "bench"] for line in proc.stdout.splitlines())


@pytest.mark.slow
def test_bench_ls_does_not_import_torch(tmp_path: Path) -> None:
    site = write_site(tmp_path / "site")
    code = "import sys, bench.cli.main; bench.cli.main.main(['ls']); print('torch' in sys.modules)"
    for env in (_env(), _env(site)):
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines()[-1] == "False"


@pytest.mark.slow
def test_plugin_raising_system_exit_does_not_end_bench_ls(tmp_path: Path) -> None:
    site = tmp_path / "site"
    info = site / "bench_test_exits-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bench-test-exits\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[bench]\nexits = bench_test_exits\n")
    (site / "bench_test_exits.py").write_text('raise SystemExit("this plugin needs a GPU")\n')
    proc = _bench("ls", env=_env(site))
    assert proc.returncode == 0, proc.stderr
    assert "exits" in proc.stdout.split("failed plugins:")[-1]
    assert "SystemExit: this plugin needs a GPU" in proc.stdout

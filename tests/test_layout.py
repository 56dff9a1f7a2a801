"""The project's shape: imports point one way, each choice is declared once,
and every command reports errors the same way."""

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from components.trainer import choices, recipes
from pipeline.cli.main import main
from pipeline.config import Config, ConfigError
from pipeline.config_loading import load_config, with_recipe

ROOT = Path(__file__).resolve().parents[1]


def absolute_imports(path: Path) -> list[tuple[str, list[str]]]:
    """Every absolute import in a file, inside functions too (a lazy import is
    still a dependency): ``(module, [])`` for ``import module``, ``(module,
    [names])`` for ``from module import names``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def imported_modules(folder: Path) -> dict[str, set[str]]:
    """``{file: top-level modules it imports}`` for every Python file under ``folder``."""
    return {
        str(path.relative_to(ROOT)): {module for module, _ in absolute_imports(path)} for path in folder.rglob("*.py")
    }


def import_graph() -> dict[str, set[str]]:
    """``{module: project modules it imports}`` for pipeline/, components/, bench/
    and schema/. ``from package import module`` points at the module."""
    paths = {}
    for folder in ("pipeline", "components", "bench", "schema"):
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            paths[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for module, path in paths.items():
        targets = set()
        for imported, names in absolute_imports(path):
            submodules = {f"{imported}.{name}" for name in names} & paths.keys()
            targets |= submodules if names and len(submodules) == len(names) else {imported, *submodules}
        graph[module] = {target for target in targets if target in paths and target != module}
    return graph


def test_no_modules_import_each_other_even_through_others():
    graph = import_graph()
    cycles = []
    for start in graph:  # a depth-first walk from each module back to itself
        stack = [(start, [start])]
        while stack:
            module, path = stack.pop()
            for target in graph[module]:
                if target == start:
                    cycles.append(" -> ".join(path + [start]))
                elif target not in path and target > start:  # each cycle once, from its smallest module
                    stack.append((target, path + [target]))
    assert cycles == []


MAX_MODULE_LINES = 350


def test_no_module_of_the_application_is_over_350_lines():
    """A module that long mixes concepts: split it by concept (tests may be longer)."""
    too_long = {
        str(path.relative_to(ROOT)): lines
        for folder in ("pipeline", "components", "bench")
        for path in (ROOT / folder).rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert too_long == {}


def test_components_never_import_the_application():
    offenders = {
        file: sorted(name for name in names if name == "pipeline" or name.startswith("pipeline."))
        for file, names in imported_modules(ROOT / "components").items()
    }
    assert {file: names for file, names in offenders.items() if names} == {}


def test_tensorflows_environment_is_set_in_one_place_with_the_dockerfiles_values():
    from components.shared import tf_environment

    setters = []
    for folder in ("pipeline", "components", "bench", "tests"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for name in tf_environment.VARIABLES:
                if f'environ.setdefault("{name}"' in text or f'environ["{name}"] =' in text:
                    setters.append(f"{path.relative_to(ROOT)}: {name}")
    assert setters == [], "set them with components.shared.tf_environment.configure() instead"
    dockerfile = (ROOT / "Dockerfile").read_text()
    for name, value in tf_environment.VARIABLES.items():
        assert f"    {name}={value} " in dockerfile, f"the Dockerfile's ENV does not set {name}={value}"


def test_only_the_command_line_imports_a_runner():
    offenders = {
        file: sorted(name for name in names if name.startswith("pipeline.runners"))
        for file, names in imported_modules(ROOT / "pipeline").items()
        if not file.startswith(("pipeline/cli/", "pipeline/runners/"))
    }
    assert {file: names for file, names in offenders.items() if names} == {}


def test_importing_components_the_configuration_and_the_progress_display_loads_no_tensorflow():
    code = (
        "import sys, components, components.trainer.choices, components.trainer.recipes, pipeline.config, "
        "pipeline.runners.progress; print('tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "False"


def test_a_local_run_imports_no_tfx_component_it_does_not_use():
    """pipeline/lean_tfx.py: building the DAG and the local runner leaves out
    the Tuner's Keras Tuner and the InfraValidator's Kubernetes client; a name
    of ``tfx.components`` still works when asked for."""
    code = textwrap.dedent("""
        import sys
        from pipeline import dag, lean_tfx
        from pipeline.config import Config
        from pipeline.runners import local
        dag.create_pipeline(Config(), dag.DataLocation("/tmp/data", "*.tfrec"), "/tmp/root", "/tmp/serving")
        print(sorted({"keras_tuner", "kubernetes"} & set(sys.modules)), lean_tfx.full_init_ran())
        from tfx.components import Tuner
        print(Tuner.__module__, lean_tfx.full_init_ran())
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split("\n")[:2] == ["[] False", "tfx.components.tuner.component True"]


def test_every_model_name_has_a_recipe_and_a_builder():
    from components.trainer import models  # TensorFlow

    assert tuple(recipes.RECIPES) == choices.MODEL_NAMES
    assert tuple(models.BUILDERS) == choices.MODEL_NAMES


@pytest.mark.parametrize(
    "key, declared",
    [
        ("model.name", choices.MODEL_NAMES),
        ("model.optimizer", choices.OPTIMIZERS),
        ("model.lr_schedule", choices.LR_SCHEDULES),
        ("model.fine_tune_lr_schedule", choices.LR_SCHEDULES),
        ("model.strategy", choices.STRATEGIES),
        ("model.mixed_precision", choices.PRECISIONS),
    ],
)
def test_the_configuration_accepts_exactly_the_declared_choices(key, declared):
    for value in declared:
        assert getattr(load_config(overrides={key: value}).model, key.split(".")[1]) == value
    with pytest.raises(ConfigError, match=", ".join(declared)):
        load_config(overrides={key: "no-such-choice"})


def test_with_recipe_replaces_every_auto_and_keeps_what_was_set():
    config = load_config(overrides={"model.name": "xception", "model.epochs": "3"})
    resolved = with_recipe(config)
    assert config.model.learning_rate is None  # the original is untouched
    assert resolved.model.epochs == 3
    assert resolved.model.learning_rate == recipes.RECIPES["xception"]["learning_rate"]
    assert resolved.model.lr_schedule == "ramp"
    assert all(value is not None for value in vars(resolved.model).values())


def test_config_show_resolved_prints_the_values_a_run_uses(capsys, tmp_path):
    assert main(["config", "show", "--resolved", "--set", "model.name=squeezenet"]) == 0
    text = capsys.readouterr().out
    model_section = text.split("[model]")[1].split("[gate]")[0].splitlines()
    # strategy and mixed_precision have a real choice called "auto"; no recipe setting is left at auto.
    assert [line for line in model_section if line.endswith('"auto"')] == [
        'strategy = "auto"',
        'mixed_precision = "auto"',
    ]
    assert "epochs = 30" in text and 'lr_schedule = "exponential"' in text
    # It reads back as the same configuration.
    saved = tmp_path / "resolved.toml"
    saved.write_text(text)
    assert load_config(saved).model == with_recipe(load_config(overrides={"model.name": "squeezenet"})).model
    assert main(["config", "show"]) == 0
    assert 'epochs = "auto"' in capsys.readouterr().out
    assert Config().model.epochs is None


@pytest.mark.parametrize(
    "argv, status, message",
    [
        (["config", "show", "--set", "model.epochs=-1"], 2, "error: configuration: model.epochs: -1 is out of range"),
        (["data", "inspect", "/no/such/folder"], 2, "error: no files match /no/such/folder"),
        (
            ["data", "synth", "--out", "{tmp}/s", "--images", "3", "--shards", "1", "--seed", "0", "--size", "8"],
            2,
            "error: size must be at least 16 pixels, got 8",
        ),
        (
            ["data", "convert", "--from", "{tmp}/none", "--out", "{tmp}/out"],
            2,
            "error: source folder {tmp}/none does not exist or is not a folder",
        ),
        (["models", "list", "--serving-dir", "{tmp}/none"], 2, "error: {tmp}/none: no such serving directory"),
        (["models", "rollback", "--to", "{tmp}/none"], 2, "error: {tmp}/none: no such directory"),
        (["predict", "--model", "{tmp}/none", "x.jpg"], 2, "error: {tmp}/none: no such directory"),
    ],
)
def test_every_command_reports_a_problem_in_one_line_with_its_status(argv, status, message, tmp_path, capsys):
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    assert main(argv) == status
    err = capsys.readouterr().err
    assert err.startswith(message.replace("{tmp}", str(tmp_path)))
    assert "Traceback" not in err


def test_a_path_that_is_a_file_is_named_not_raised(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["models", "rollback", "--to", str(blocker)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {blocker}: not a directory")


def test_a_failed_run_names_the_component_ml_metadata_records_as_failed_or_the_first_unfinished_one():
    from pipeline.reporting.run_outputs import ComponentRun
    from pipeline.runners.local import failed_component

    order = ["ImportExampleGen", "StatisticsGen", "Trainer", "Pusher"]
    ran = [ComponentRun("ImportExampleGen", 1, "cached", 0.0), ComponentRun("StatisticsGen", 2, "ran", 1.0)]
    assert failed_component(ran + [ComponentRun("Trainer", 3, "failed", 2.0)], order) == "Trainer"
    # Failed in its driver, before TFX recorded an execution.
    assert failed_component(ran, order) == "Trainer"
    assert failed_component([], order) == "ImportExampleGen"

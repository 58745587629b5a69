"""Command-line entry point: ``python -m genlab <command> [hydra overrides]``.

The command word is removed from ``sys.argv`` before Hydra parses the rest, and kept in the
``GENLAB_COMMAND`` environment variable: Lightning's DDP launcher re-executes
``python -m genlab.__main__ <overrides>`` for ranks >= 1, and those processes read it back.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

COMMANDS: dict[str, str] = {
    "train": "train a model on a dataset; writes outputs/train/<date_time>_<model>_<data>/",
    "sample": "generate images from a trained run: sample run=DIR [n=64] [seed=0]",
    "eval": "score a trained run (FID, KID, precision/recall, accuracy): eval run=DIR",
    "augment": "preview an augmentation pipeline: augment data=X augment=Y [n=16]",
    "export": "safetensors weights + config + model card of a run: export run=DIR [ckpt=last|best]",
    "demo": "a local web page to play with a run (Gradio): demo run=DIR [port=7860]",
    "tune": "search hyperparameters with Optuna: tune experiment=tune_dcgan [tune.n_trials=20]",
    "invert": "learn new classes of a conditional DDPM from k images each: invert run=DIR classes=[5,6] k=5",
}

COMMAND_ENV = "GENLAB_COMMAND"

# Commands that read an existing run: their output folder lives inside it, so check it first.
RUN_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "sample": ("run",),
    "eval": ("run", "sweep"),
    "export": ("run",),
    "demo": ("run",),
    "invert": ("run",),
}


def usage() -> str:
    """The top-level help text listing every command."""
    width = max(map(len, COMMANDS))
    lines = [
        "usage: python -m genlab <command> [-m] [key=value ...]",
        "",
        "commands:",
        *(f"  {name:<{width}}  {text}" for name, text in COMMANDS.items()),
        "",
        "`python -m genlab <command> --help` shows that command's config groups and options.",
    ]
    return "\n".join(lines)


def check_run_arguments(command: str, args: list[str]) -> None:
    """Exit with a clear message unless ``run=`` names existing run folder(s) (before Hydra creates any folder)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from genlab.errors import GenlabError
    from genlab.runs import check_run_dir

    try:
        overrides = OverridesParser.create().parse_overrides([a for a in args if not a.startswith("-")])
    except HydraException:
        return  # Hydra reports malformed overrides itself.
    given = {o.key_or_group: o for o in overrides}
    try:
        if not any(key in given for key in RUN_ARGUMENTS[command]):
            check_run_dir(None)
        if "run" in given:
            run = given["run"]
            values = [getattr(v, "text", v) for v in run.sweep_iterator()] if run.is_sweep_override() else [run.value()]
            for value in values:
                check_run_dir(value)
    except GenlabError as err:
        print(f"genlab: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def check_group_options(args: list[str], config_dir: str) -> None:
    """Exit with a one-line message when ``group=option`` names no yaml file of that config group.

    (Hydra's own error lists the config search path over a dozen lines.) Skipped when extra
    config folders are given, since the option may live there.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    if any(a.startswith(("hydra.searchpath", "--config-dir", "-cd", "--config-path", "-cp")) for a in args):
        return
    try:
        overrides = OverridesParser.create().parse_overrides([a for a in args if not a.startswith("-")])
    except HydraException:
        return  # Hydra reports malformed overrides itself.
    for override in overrides:
        folder = Path(config_dir) / override.key_or_group
        if override.is_delete() or not folder.is_dir() or override.value() is None:
            continue
        values = list(override.sweep_string_iterator()) if override.is_sweep_override() else [override.value()]
        choices = sorted(p.stem for p in folder.glob("*.yaml"))
        for value in values:
            if isinstance(value, str) and value not in choices:
                print(
                    f"genlab: error: {override.get_key_element()}={value} is not an option of the config group "
                    f"'{override.key_or_group}': choose one of {', '.join(choices)}.",
                    file=sys.stderr,
                )
                raise SystemExit(2)


def main(argv: list[str] | None = None) -> None:
    """Dispatch to the Hydra entry point of the requested command."""
    args = list(sys.argv[1:] if argv is None else argv)
    if os.environ.get("LOCAL_RANK") and os.environ.get(COMMAND_ENV) in COMMANDS:
        command = os.environ[COMMAND_ENV]
        if args and args[0] == command:
            args = args[1:]
    elif not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return
    else:
        command = args.pop(0)
        if command not in COMMANDS:
            print(f"genlab: unknown command '{command}'\n\n{usage()}", file=sys.stderr)
            raise SystemExit(2)
    if command in RUN_ARGUMENTS and not {"-h", "--help", "--hydra-help", "--cfg", "-c"} & set(args):
        check_run_arguments(command, args)
    os.environ[COMMAND_ENV] = command
    module = importlib.import_module(f"genlab.tasks.{command}")
    if not {"-h", "--help", "--hydra-help"} & set(args):
        check_group_options(args, module.CONFIG_PATH)
    if not {"-h", "--help", "--hydra-help"} & set(args):
        from genlab.errors import GenlabError
        from genlab.tasks.overrides import check_output_root, check_overrides

        try:
            args = module.rewrite_args(args)
            if command != "train" or not any(a.startswith("resume=") for a in args):
                cfg = check_overrides(command, args)
                if cfg is not None:
                    check_output_root(cfg)
        except GenlabError as err:
            print(f"genlab: error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
    sys.argv = [sys.argv[0], *args]
    try:
        module.main()
    finally:
        stop_sweep_workers()


def stop_sweep_workers() -> None:
    """Stop the worker processes a joblib sweep leaves behind (loky keeps them idle for 5 minutes after
    the sweep, holding memory and the terminal's output)."""
    loky = sys.modules.get("joblib.externals.loky.reusable_executor")
    executor = getattr(loky, "_executor", None)  # loky's one reusable executor; None when no sweep ran
    if executor is not None:
        executor.shutdown(wait=True)


if __name__ == "__main__":
    main()

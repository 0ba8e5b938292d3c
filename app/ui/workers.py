"""Running long jobs off the GUI thread: a plain function in, Qt signals out.

A job is an ordinary function `job(report: JobReport) -> result` that knows nothing about Qt. It
calls report.progress(done, total) and report.preview(anything) as it goes, and checks
report.cancelled() between steps (cancel is a flag, as in napari's workers). To stop, it either
returns early or raises one of CANCEL_EXCEPTIONS (JobCancelled, the sampler's SamplingCancelled,
the exporter's ExportCancelled).

Worker adapts that to signals, emitted on the GUI thread:

    progress(int, int)   done, total
    preview(object)      whatever the job previewed
    finished(object)     the job's result
    failed(str)          one sentence for a person
    cancelled()          the job stopped because cancel() was called

Exactly one of finished / failed / cancelled is emitted per run. The event loop is never blocked:
the job runs in a thread of its own, and everything it reports crosses back to the GUI thread as
queued signals, so the public signals are always emitted on the GUI thread.
"""

from __future__ import annotations

import sys
import threading
import traceback

from PySide6.QtCore import QObject, Qt, Signal, Slot


class JobCancelled(Exception):
    """Raised by a job that noticed report.cancelled()."""


def _cancel_exceptions() -> tuple:
    """Exception types that mean "the user cancelled", not "it failed"."""
    kinds = [JobCancelled]
    try:
        from app.diffusion.sampler import SamplingCancelled

        kinds.append(SamplingCancelled)
    except ImportError:
        pass
    try:
        from app.render.export import ExportCancelled

        kinds.append(ExportCancelled)
    except ImportError:
        pass
    return tuple(kinds)


def error_sentence(error: BaseException) -> str:
    """A one-sentence message for a person: the error's own text for user errors, else its kind."""
    text = str(error).strip()
    if isinstance(error, (ValueError, OSError)) and text:
        return text if text.endswith((".", "!", "?")) else text + "."
    if isinstance(error, MemoryError):
        return "There is not enough memory for this job."
    if text:
        return f"Something went wrong ({type(error).__name__}: {text.splitlines()[0]})."
    return f"Something went wrong ({type(error).__name__})."


class JobReport:
    """What a job receives: progress and preview callbacks and the cancel flag (thread-safe)."""

    def __init__(self, worker: "Worker"):
        self._worker = worker

    def progress(self, done: int, total: int) -> None:
        self._worker._job_progress.emit(int(done), int(total))

    def preview(self, value) -> None:
        self._worker._job_preview.emit(value)

    def cancelled(self) -> bool:
        return self._worker.is_cancel_requested()


class Worker(QObject):
    """Runs job(report) in a thread of its own; see the module docstring for the signals.

    The Worker itself stays in the thread that made it (the GUI thread). The job thread emits
    private signals that arrive here queued, and the public signals are re-emitted from the GUI
    thread, so whatever is connected to them (lambdas included) runs on the GUI thread.
    """

    progress = Signal(int, int)
    preview = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()

    _job_progress = Signal(int, int)
    _job_preview = Signal(object)
    _job_ended = Signal(str, object)  # "finished" | "failed" | "cancelled", payload

    def __init__(self, job, name: str = "job", parent=None):
        super().__init__(parent)
        self.job = job
        self.name = name
        self._cancel_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._running = False
        self._job_progress.connect(self._on_job_progress, Qt.QueuedConnection)
        self._job_preview.connect(self._on_job_preview, Qt.QueuedConnection)
        self._job_ended.connect(self._on_job_ended, Qt.QueuedConnection)

    # --- control (GUI thread) ------------------------------------------------------------------

    def start(self) -> None:
        """Start the job in a new thread; returns at once."""
        if self._thread is not None:
            raise RuntimeError("A worker runs its job only once.")
        self._running = True
        self._thread = threading.Thread(target=self._run, name=f"aeolus-{self.name}", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        """Ask the job to stop at its next check; the cancelled signal follows."""
        self._cancel_event.set()

    def is_cancel_requested(self) -> bool:
        return self._cancel_event.is_set()

    def is_running(self) -> bool:
        """True from start() until the end signal has been emitted."""
        return self._running

    def wait(self, milliseconds: int = 10_000) -> bool:
        """Block until the job's thread has ended (shutdown, tests); True when it did."""
        if self._thread is None:
            return True
        self._thread.join(milliseconds / 1000.0)
        return not self._thread.is_alive()

    # --- the job (its own thread) ----------------------------------------------------------------

    def _run(self) -> None:
        report = JobReport(self)
        try:
            result = self.job(report)
        except _cancel_exceptions():
            self._job_ended.emit("cancelled", None)
        except Exception as error:  # any failure becomes one sentence; details go to stderr
            traceback.print_exc(file=sys.stderr)
            self._job_ended.emit("failed", error_sentence(error))
        else:
            self._job_ended.emit("cancelled" if self._cancel_event.is_set() else "finished", result)

    # --- back on the GUI thread --------------------------------------------------------------------

    @Slot(int, int)
    def _on_job_progress(self, done: int, total: int) -> None:
        self.progress.emit(done, total)

    @Slot(object)
    def _on_job_preview(self, value) -> None:
        self.preview.emit(value)

    @Slot(str, object)
    def _on_job_ended(self, kind: str, payload) -> None:
        self._running = False
        if kind == "finished":
            self.finished.emit(payload)
        elif kind == "failed":
            self.failed.emit(str(payload))
        else:
            self.cancelled.emit()

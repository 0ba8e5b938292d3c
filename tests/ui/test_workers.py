"""The generic worker: a plain function in a thread, its callbacks turned into Qt signals."""

import threading

from app.ui.workers import JobCancelled, Worker, error_sentence


def test_worker_reports_progress_and_result_from_another_thread(qtbot):
    threads = []

    def job(report):
        threads.append(threading.get_ident())
        for step in range(1, 4):
            report.progress(step, 3)
        report.preview("halfway")
        return "done"

    worker = Worker(job)
    progress, previews = [], []
    worker.progress.connect(lambda done, total: progress.append((done, total)))
    worker.preview.connect(previews.append)
    with qtbot.waitSignal(worker.finished, timeout=5000) as blocker:
        worker.start()
    assert blocker.args == ["done"]
    assert progress == [(1, 3), (2, 3), (3, 3)]
    assert previews == ["halfway"]
    assert threads[0] != threading.get_ident()
    assert worker.wait(2000)


def test_cancel_is_a_flag_the_job_checks(qtbot):
    started = threading.Event()

    def job(report):
        started.set()
        while not report.cancelled():
            threading.Event().wait(0.005)
        raise JobCancelled()

    worker = Worker(job)
    finished = []
    worker.finished.connect(finished.append)
    with qtbot.waitSignal(worker.cancelled, timeout=5000):
        worker.start()
        assert started.wait(5)
        worker.cancel()
    assert finished == []
    assert not worker.is_running()


def test_a_failure_becomes_one_sentence(qtbot):
    def job(report):
        raise ValueError("The photo is too small")

    worker = Worker(job)
    with qtbot.waitSignal(worker.failed, timeout=5000) as blocker:
        worker.start()
    assert blocker.args == ["The photo is too small."]
    assert "Traceback" not in error_sentence(RuntimeError("x\ny"))

"""Functions share the local stack's process and terminal: their log keys stay their own, and lines stay readable."""

from __future__ import annotations

import io
import json
import logging
import threading

from aws_lambda_powertools import Logger

from conveyor_local.lambdas import current_function
from conveyor_local.terminal import TerminalStream, patch_powertools_loggers


def powertools_logger(name: str) -> tuple[Logger, io.StringIO]:
    out = io.StringIO()
    return Logger(service=name, logger_handler=logging.StreamHandler(out)), out


def in_thread(work) -> None:
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()


def test_keys_appended_by_one_function_do_not_leak_into_another_running_alongside() -> None:
    # Given a Powertools logger shared by two threads (two functions), patched by the local stack
    logger, out = powertools_logger("local-keys")
    patch_powertools_loggers(pretty=False, names=["local-keys"])
    appended, finished = threading.Event(), threading.Event()

    def worker() -> None:  # appends a job key and keeps it while it runs
        logger.append_keys(job_id="job_1")
        appended.set()
        finished.wait(5)
        logger.info("worker line")

    # When the other thread logs while the worker holds its key, then clears its own state
    thread = threading.Thread(target=worker)
    thread.start()
    appended.wait(5)
    logger.info("api line")
    logger.clear_state()
    finished.set()
    thread.join()

    # Then the API's line has no job_id, and the worker's key survived the API's clear_state
    lines = {json.loads(line)["message"]: json.loads(line) for line in out.getvalue().splitlines()}
    assert "job_id" not in lines["api line"]
    assert lines["worker line"]["job_id"] == "job_1"
    assert lines["api line"]["service"] == lines["worker line"]["service"] == "local-keys"


def test_pretty_lines_carry_level_message_and_the_keys_that_matter() -> None:
    logger, out = powertools_logger("local-pretty")
    patch_powertools_loggers(pretty=True, names=["local-pretty"])

    in_thread(lambda: logger.info("job completed", extra={"job_id": "job_2"}))

    line = out.getvalue().strip()
    assert line.startswith("INFO  job completed")
    assert "job_id=job_2" in line and "service" not in line


def test_function_output_is_labelled_and_metric_lines_condensed_or_hidden() -> None:
    # Given the terminal stream, metrics shown
    target = io.StringIO()
    stream = TerminalStream(target, show_metrics=True)
    emf = json.dumps(
        {
            "_aws": {
                "CloudWatchMetrics": [
                    {
                        "Namespace": "N",
                        "Dimensions": [["job_type"]],
                        "Metrics": [{"Name": "JobsCompleted", "Unit": "Count"}],
                    }
                ]
            },
            "job_type": "email.send",
            "JobsCompleted": [1.0],
        }
    )

    # When a function prints a line in two writes, and an EMF metric line
    def function() -> None:
        token = current_function.set("WorkerFunction")
        stream.write("hello ")
        stream.write("world\n")
        stream.write(emf + "\n")
        current_function.reset(token)

    in_thread(function)
    stream.write("runner line\n")

    # Then each comes out whole, labelled with the function; the metric as one short line; the runner's as is
    lines = target.getvalue().splitlines()
    assert lines[0].endswith("WorkerFunction       hello world")
    assert "metric JobsCompleted=1 Count  job_type=email.send" in lines[1]
    assert lines[2] == "runner line"

    hidden = io.StringIO()
    quiet = TerminalStream(hidden, show_metrics=False)
    token = current_function.set("WorkerFunction")
    quiet.write(emf + "\n")
    current_function.reset(token)
    assert hidden.getvalue() == ""

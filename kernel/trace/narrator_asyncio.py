"""The asyncio adapter's events, told as asyncio names them.

``run_until_complete`` wrapping a coroutine in a Task, ``call_soon`` appending to ``_ready``,
``Task.__step`` sending into the coroutine, ``__wakeup`` after a future is done, done
callbacks, ``call_later`` putting a ``TimerHandle`` into ``_scheduled``, and
``_run_until_complete_cb``, the callback that stops the loop. As in ``narrator_kernel.py``, each
method tells one kind of record and folds in what belongs to the same decision (the done
callbacks one ``set_result`` schedules are one step).

Read next: ``kernel/trace/explain.py``, which puts the two vocabularies together.
"""

from __future__ import annotations

from typing import Any

from .narrator import _names, _NarratorBase, _t
from .records import Record

__all__: list[str] = []  # package-private: explain.py is the public face


def _outcome(outcome: dict[str, Any]) -> str:
    if outcome.get("cancelled"):
        return "cancelled"
    if "exception" in outcome:
        return f"exception {outcome['exception']}"
    if "result" in outcome:
        return f"result {outcome['result']}"
    return "pending"


class _AsyncioNarrator(_NarratorBase):
    """The adapter's callbacks, in asyncio's words."""

    def _run_until_complete(self, index: int, record: Record) -> str:
        self.completing = True
        argument = record["argument"]
        if not record["wraps"]:
            return (
                f"loop.run_until_complete({argument}) is called. Its argument is already a "
                "Future (a Task is one), so there is nothing to wrap."
            )
        text = (
            f"loop.run_until_complete({argument}) is called. Its argument is a coroutine, not "
            "a Future, so run_until_complete wraps it in a Task"
        )
        first = self._next(index, "call_soon")
        if first is None or not self.records[first].get("first_step"):
            return text + "."
        step = self._fold(first)
        return (
            f"{text}, {step['task']} (asyncio.ensure_future calls loop.create_task). "
            f"{self._new_task(step)}"
        )

    def _new_task(self, record: Record) -> str:
        task = record["task"]
        return (
            f"Task.__init__ schedules the first step of {task} with "
            f"loop.call_soon({task}.__step), which appends it to _ready; {record['coro']}() "
            "has not started yet."
        )

    def _add_done_callback(self, index: int, record: Record) -> str:
        task = record["future"]
        return (
            f"run_until_complete adds a done callback to {task}: {record['callback']}, which "
            f"will stop the loop once {task} is done."
        )

    def _run_forever(self, index: int, record: Record) -> str:
        caller = "run_until_complete calls loop.run_forever()"
        if not self.completing:
            caller = "loop.run_forever() is called"
        return f"{caller}: the loop now turns, _run_once after _run_once, until it is stopped."

    def _call_soon(self, index: int, record: Record) -> str:
        task, callback = record["task"], record["callback"]
        if record.get("first_step"):
            return (
                f"A Task, {task}, is created for the coroutine {record['coro']}() "
                f"(loop.create_task). {self._new_task(record)}"
            )
        if record.get("again"):
            return (
                f"{record['coro']}() yields None (asyncio.sleep(0), a bare yield): 'let the "
                f"others run'. __step schedules itself again with "
                f"loop.call_soon({task}.__step), to the back of _ready."
            )
        if "future" not in record:
            return (
                f"{record['by']} calls loop.call_soon({callback}): it goes to the back of _ready."
            )
        callbacks = [record]
        while (later := self._next(index, "call_soon")) is not None:
            if self.records[later].get("future") != record["future"]:
                break
            callbacks.append(self._fold(later))
            index = later
        names = _names([c["callback"] for c in callbacks])
        future, outcome = record["future"], record["outcome"]
        schedules = f"loop.call_soon, in the order they were added: {names}, to the back of _ready."
        if record.get("finished_step"):
            self.finished.add(future)
            return f"{self._task_ended(record)} That schedules its done callbacks with {schedules}"
        setter = (
            "cancel()"
            if outcome.get("cancelled")
            else f"set_exception({outcome['exception']})"
            if "exception" in outcome
            else f"set_result({outcome['result']})"
        )
        return (
            f"{future}.{setter} makes {future} done, and schedules its done callbacks with "
            f"{schedules}"
        )

    def _task_ended(self, record: Record) -> str:
        """How the coroutine's end became the Task's outcome (a Task is a Future)."""
        task, coro, outcome = record["task"], record["coro"], record["outcome"]
        if outcome.get("cancelled"):
            return f"{coro}() ends cancelled, so __step cancels {task}."
        if "exception" in outcome:
            exc = outcome["exception"]
            return f"{coro}() raises {exc}, so __step calls set_exception({exc}) on {task}."
        result = outcome["result"]
        return (
            f"{coro}() returns {result}: coro.send() raises StopIteration({result}), so __step "
            f"calls set_result({result}) on {task} (a Task is a Future)."
        )

    def _call_soon_threadsafe(self, index: int, record: Record) -> str:
        callback = record["callback"]
        if record["other_thread"]:
            return (
                f"Another thread has called loop.call_soon_threadsafe({callback}): it is at the "
                "back of _ready. (The trace tells it here, where the kernel's thread first "
                "notices it: nothing is traced on other threads.)"
            )
        return (
            f"{record['by'] or 'The program'} calls loop.call_soon_threadsafe({callback}): as "
            "with loop.call_soon, it goes to the back of _ready; being thread-safe, the call "
            "also writes a byte to the kernel's wake-up socket, which wakes selector.select() "
            "if it is waiting."
        )

    def _call_at(self, index: int, record: Record) -> str:
        until, delay = record["until"], record["delay"]
        # An infinite deadline (asyncio.sleep(math.inf)) is None in the records.
        due = "never due" if until is None else f"due at {_t(until)}"
        if "_set_result_unless_cancelled" in record["callback"] and record.get("coro"):
            future = record["future"]
            seconds = "inf" if until is None else f"{delay:.3g}"
            return (
                f"{record['coro']}() calls asyncio.sleep({seconds}): sleep creates {future} and "
                f"calls loop.call_later({seconds}, futures._set_result_unless_cancelled, "
                f"{future}, None), which puts a TimerHandle {due} into _scheduled "
                f"(the kernel's sleeping queue). Then sleep awaits {future}."
            )
        when = "inf" if until is None else f"{until:.3f}"
        return (
            f"{record['by'] or 'The program'} calls loop.call_at({when}): "
            f"{record['callback']} goes into _scheduled, {due}."
        )

    def _watch(self, index: int, record: Record) -> str:
        return (
            f"{record['by'] or 'The program'} watches {record['fd']} ({record['for']}): "
            f"{record['callback']} will be queued each time it is ready."
        )

    def _callback(self, index: int, record: Record) -> str:
        kind, callback = record["kind"], record["callback"]
        task, coro = record.get("task"), record.get("coro")
        if kind == "step":
            if record["how"] == "throw":
                return f"{callback} runs: it calls coro.throw({record['exc']}) into {coro}()."
            if record["first"]:
                return f"{callback} runs: it calls coro.send(None), and {coro}() starts running."
            return f"{callback} runs: it calls coro.send(None), and {coro}() resumes."
        if kind == "wakeup":
            future = record["future"]
            if record["how"] == "send":
                return (
                    f"{callback} runs: {future} has a result, so __wakeup calls __step(), "
                    f"which calls coro.send(None): {coro}() resumes after its await."
                )
            return (
                f"{callback} runs: {future} ended with {_outcome(record['outcome'])}, so "
                f"__wakeup calls __step(exc), which throws it into {coro}() with coro.throw()."
            )
        if kind == "timer" and "_set_result_unless_cancelled" in callback:
            future = record["future"]
            return (
                f"The TimerHandle runs: futures._set_result_unless_cancelled({future}, None) "
                f"calls {future}.set_result(None), unless {future} was cancelled meanwhile."
            )
        if kind == "stop":
            text = f"{callback} runs: the done callback that run_until_complete added."
            stop = self._next(index, "stop")
            if stop is not None:
                self._fold(stop)
                text += " It calls loop.stop(). " + self._stopping()
            return text
        owner = f" (a done callback of {task})" if task is not None else ""
        return f"{callback} runs{owner}."

    def _callback_done(self, index: int, record: Record) -> str | None:
        outcome = record.get("outcome")
        if not outcome:
            return None
        task, coro = record["task"], record["coro"]
        if "yielded" in outcome:
            future = outcome["yielded"]
            return (
                f"{coro}() awaits {future}, which is pending, so `await` yields {future} back "
                f"to {task}.__step. __step calls {future}.add_done_callback({task}.__wakeup) and "
                f"returns: {task} waits, and nothing of it is in _ready."
            )
        if record.get("ended") and task not in self.finished:
            self.finished.add(task)
            return f"{self._task_ended(record)} {task} has no done callbacks."
        return None

    def _stop(self, index: int, record: Record) -> str:
        return f"{record['by'] or 'The program'} calls loop.stop(). {self._stopping()}"

    def _stopping(self) -> str:
        return (
            "stop() only sets a flag, _stopping: the loop finishes this turn (whatever is left "
            "of it still runs), then stops instead of starting another _run_once."
        )

    def _run_forever_return(self, index: int, record: Record) -> str:
        return "The turn is over and the loop is stopping, so run_forever returns."

    def _run_until_complete_return(self, index: int, record: Record) -> str:
        self.completing = False
        future, outcome = record["future"], record["outcome"]
        if "result" in outcome:
            return (
                f"run_until_complete returns future.result(): {outcome['result']}, the result "
                f"of {future}."
            )
        return (
            f"run_until_complete calls future.result(), which raises what {future} holds: "
            f"{_outcome(outcome)}."
        )

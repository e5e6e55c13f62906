"""The kernel's loop and its tasks, told: turns, select(), timers, spawns, traps, wake-ups, ends.

Each method tells one kind of record (``_trap`` a ``trap`` record...) and folds into its step
the records that are part of the same decision: a trap with where it parked the task, a timer
that came due with the task it woke, a task's end with the joiners it woke.

The loop -- its turns, ``select()``, the timers that come due -- is the kernel's under the
asyncio adapter too, so it is told here in both vocabularies (``self.asyncio`` picks the words:
``_run_once``, ``_ready``, ``_scheduled``, ``TimerHandle``). The adapter's own events are in
``narrator_asyncio.py``.

Read next: ``kernel/trace/narrator_asyncio.py``.
"""

from __future__ import annotations

from .narrator import _deadline, _names, _NarratorBase, _s, _t
from .records import Record

__all__: list[str] = []  # package-private: explain.py is the public face

# Why a parked task was woken by another task's WAKE trap, by the state it waited in.
_WAKE_MEANS = {
    "EVENT_WAIT": "{on} is set",
    "UNIVERSAL_EVENT": "{on} is set",
    "LOCK": "{on} is released and handed over to the first waiter",
    "RLOCK": "{on} is released and handed over to the first waiter",
    "SEMAPHORE": "a permit of {on} is released and handed over to the first waiter",
    "CONDITION": "{on} is notified",
    "QUEUE_GET": "an item is put into {on} and handed over to the first getter",
    "QUEUE_PUT": "an item is taken from {on}, making room for the first putter",
    "QUEUE_JOIN": "the last item of {on} is done",
}

# What ends a wait in a wait queue, by the state it waits in, when not only another task can:
# other threads hand their part over through call_threadsafe, which phase 1 runs.
_WOKEN_WHEN = {
    "THREAD": "the worker thread running the function is done and hands the result over "
    "(call_threadsafe)",
    "SIGNAL_WAIT": "the signal comes (its handler hands it over with call_threadsafe)",
    "UNIVERSAL_EVENT": "another task, or another thread, wakes it",
    "UNIVERSAL_GET": "another task, or another thread, wakes it",
    "UNIVERSAL_PUT": "another task, or another thread, wakes it",
}


class _KernelNarrator(_NarratorBase):
    """The loop and kernel tasks, in the kernel's words (the loop in asyncio's, if asked)."""

    # -- the loop ----------------------------------------------------------------------------------

    def _turn(self, index: int, record: Record) -> str:
        tick, t = record["tick"], _t(record["t"])
        if self.asyncio:
            self.header = f"── _run_once #{tick} (turn {tick} of the kernel's loop), {t} ──"
        else:
            self.header = f"── turn {tick}, {t} ──"
        after = self._next(index, "select")
        if after is not None:
            return self._select(after, self._fold(after))
        after = self._next(index, "deadlock")  # phase 1 found that select() would never return
        if after is not None:
            return self._deadlock(after, self._fold(after))
        ready = record["state"]["ready"]
        again, self.skipped = self.skipped, True
        if self.asyncio:
            holds = f"_ready holds [{', '.join(ready)}]"
            if again:
                return f"{holds}; again no select() call (callbacks are ready, nothing watched)."
            return (
                f"{holds}. asyncio's own loop would call selector.select(timeout=0) now; the "
                "kernel skips the call when callbacks are ready and no file descriptor is "
                "watched, since it could find nothing."
            )
        holds = f"The ready queue holds {_names(ready)}"
        if again:
            return f"{holds}; again no select() (tasks are ready, nobody waits for I/O)."
        return (
            f"{holds}. Tasks are ready and no task waits for I/O, so phase 1 skips select(): "
            "it could find nothing."
        )

    def _select(self, index: int, record: Record) -> str:
        timeout, nearest = record["timeout"], record["nearest"]
        ready = "_ready" if self.asyncio else "the ready queue"
        call = "selector.select" if self.asyncio else "select"
        call += f"(timeout={'None' if timeout is None else f'{timeout:.3f}'})"
        if timeout is None:
            text = (
                f"{ready.capitalize()} is empty and no deadline is pending, so {call} waits "
                "for a file descriptor to be ready, with no time limit."
            )
        elif timeout > 0 and self.asyncio:
            text = (
                f"_ready is empty, and the nearest TimerHandle in _scheduled is not due yet: "
                f"{nearest['who']} is due at {_t(nearest['until'])}, so {call} blocks for "
                f"{_s(timeout)}, the time until then."
            )
        elif timeout > 0:
            text = (
                f"The ready queue is empty; the nearest deadline is {_deadline(nearest)} at "
                f"{_t(nearest['until'])}, so {call} blocks for {_s(timeout)}."
            )
        else:
            waiting = record["io_waiting"]
            text = (
                f"{'Callbacks' if self.asyncio else 'Tasks'} are ready, but {waiting} "
                f"wait{'s' if waiting == 1 else ''} for I/O, so {call} polls without blocking."
            )
        if timeout != 0:
            self.waited = record["tick"]
        woken = record["ready"]
        if woken:
            for wake in self._following(index, "wake"):
                self._fold(wake)
            text += f" It reports ready: {_names(woken)}, back to {ready}."
        elif timeout == 0:
            text += " Nothing is ready yet."
        elif self._handed_over(index):
            text += (
                " No file descriptor of the program becomes ready, but another thread has "
                "handed work over: the byte it wrote to the kernel's wake-up socket, which "
                f"{call.partition('(')[0]}() always watches, makes it return."
            )
        else:
            text += " No file descriptor becomes ready."
            if self.virtual and timeout is not None and nearest is not None:
                text += (
                    f" (On the virtual clock it returns at once, and time jumps to "
                    f"{_t(nearest['until'])}.)"
                )
        return text

    def _handed_over(self, index: int) -> bool:
        """Does another thread's hand-over come next (what woke a blocking select())?"""
        after = self._next(index, "wake", "call_soon_threadsafe")
        if after is None:
            return False
        record = self.records[after]
        return bool(record.get("reason") == "thread" or record.get("other_thread"))

    def _deadlock(self, index: int, record: Record) -> str:
        text = (
            "Phase 1 would now block in select() with no time limit, and nothing could ever end "
            "that wait: no task is ready, no deadline that can come is pending, nobody waits "
            "for I/O, and no other thread or signal handler could hand work over. Every task is "
            "blocked for good: a deadlock."
        )
        main = record["task"]
        if main is None:
            return (
                f"{text} No main task is waiting to be told, so the kernel raises Deadlock "
                "out of its loop."
            )
        wake = self._next(index, "wake", task=main)
        woken = None if wake is None else self._fold(wake)
        where = "where it waits" if woken is None else self._wait_queue(woken)
        return (
            f"{text} Rather than hang, the kernel's deadlock detector takes the main task, "
            f"{main}, out of {where} and puts it in the ready queue, to have a Deadlock "
            "(which says who waits for what) thrown in."
        )

    def _wait_queue(self, wake: Record) -> str:
        """Where a woken task waited: "the wait queue of Event-1 (EVENT_WAIT)"."""
        if wake["was"] == "SLEEPING":
            return "the sleeping queue"
        on = f"the wait queue of {wake['on']}" if wake["on"] else "its wait queue"
        return f"{on} ({wake['was']})"

    def _timer(self, index: int, record: Record) -> str:
        who, t = record["who"], _t(record["t"])
        if record["kind"] == "call":
            text = f"{t}: {who} is due: it moves from _scheduled to _ready."
            if self.waited == record["tick"]:
                text += (
                    " (This is the same _run_once that waited for it: after select() returns, "
                    "_run_once moves every TimerHandle whose time has come to _ready, then runs "
                    "what _ready holds.)"
                )
            return text
        if record["kind"] == "sleep":
            wake = self._next(index, "wake", task=record["task"])
            if wake is not None:
                self._fold(wake)
            return (
                f"{t}: the deadline of {who} has come: phase 2 takes it off the sleeping queue "
                f"and puts it back in the ready queue."
            )
        text = f"{t}: the timeout of {who} expires."
        cancel = self._next(index, "cancel", task=record["task"])
        if cancel is not None:
            self._fold(cancel)
            wake = self._next(cancel, "wake", task=record["task"])
            woken = None if wake is None else self._fold(wake)
            text += " " + self._cancelled(self.records[cancel], woken, "The kernel")
        return text

    # -- kernel tasks ------------------------------------------------------------------------------

    def _spawn(self, index: int, record: Record) -> str:
        if self.main is None and record["by"] is None and not self.asyncio:
            self.main = record["task"]
            return (
                f"kernel.run(main) makes main() the main task, {record['task']}, and appends "
                "it to the ready queue. Nothing runs yet: the loop has not started."
            )
        by = record["by"]
        if by is not None:  # not a spawn trap (_trap tells those): a call to start_task
            return (
                f"{by} calls Kernel.start_task, which spawns {record['task']}: the new task "
                "goes to the back of the ready queue."
            )
        return (
            f"Code outside any task (Kernel.start_task) spawns {record['task']}: the new task "
            "goes to the back of the ready queue."
        )

    def _run(self, index: int, record: Record) -> str:
        task = record["task"]
        if record["how"] == "throw":
            return (
                f"{task} runs: the kernel resumes it with coro.throw({record['exc']}), so the "
                f"exception is raised where the task was waiting."
            )
        if record["first"]:
            return f"{task} runs for the first time: coro.send(None) starts its coroutine."
        return f"{task} runs: the kernel resumes it with coro.send({record['value']})."

    def _trap(self, index: int, record: Record) -> str:
        task, call = record["task"], record["call"]
        bad = self._next(index, "bad_yield", task=task)
        if bad is not None:  # a trap's name with the wrong arguments: no trap after all
            return self._bad_yield(bad, self._fold(bad))
        text = f"{task} yields {call}"
        effects = [self._fold(i) for i in self._following(index, "spawn")]
        wakes = [self._fold(i) for i in self._following(index, "wake")]
        cancels = [self._fold(i) for i in self._following(index, "cancel")]
        wakes += [self._fold(i) for i in self._following(index, "wake")]
        after = self._next(index, "park", "run", task=task)
        end = self._fold(after) if after is not None else None
        if end is None:
            return f"{text}."
        if end["event"] == "park":
            return f"{text}: {self._parked(task, end)}"
        if end["how"] == "throw":
            why = ""
            if "Cancel" in end["exc"] or "Timeout" in end["exc"]:
                why = " (a blocking trap is where a pending cancellation is delivered)"
            return f"{text}; the kernel answers by throwing {end['exc']} into it at once{why}."
        answer = end["value"]
        trap = record["trap"]
        if trap == "spawn" and effects:
            return (
                f"{text}: the kernel creates {effects[0]['task']} at the back of the ready "
                f"queue; {task} carries on at once, holding the new task."
            )
        if trap == "wake":
            if not wakes:
                return f"{text}: nobody is waiting there; {task} carries on."
            woken = _names([w["task"] for w in wakes])
            means = _WAKE_MEANS.get(wakes[0]["was"], "")
            means = means.format(on=wakes[0]["on"]) + ", so " if means else ""
            return (
                f"{text}: {means}the kernel moves {woken} from the wait queue of "
                f"{wakes[0]['on']} to the ready queue. {task} woke {woken}, and carries on."
            )
        if trap == "cancel" and cancels:
            wake = next((w for w in wakes if w["task"] == cancels[0]["task"]), None)
            return f"{text}: {self._cancelled(cancels[0], wake, task)} {task} carries on."
        if trap == "clock":
            return f"{text} to read the clock: the kernel answers {answer} at once; it carries on."
        if trap == "get_current":
            return f"{text}: the kernel answers with the running task itself; it carries on."
        if trap == "set_cancellation":
            doing = {
                "False": "enters a disable_cancellation() block: a cancellation now waits",
                "True": "leaves its disable_cancellation() block",
            }.get(record["args"][0], "looks for a pending cancellation")
            return f"{text}: it {doing}; the kernel answers at once and it carries on."
        if trap == "set_timeout" and "deadline" in record:
            if record["deadline"] is None:
                return (
                    f"{text}: the deadline is infinite, so the timeout it arms can never "
                    f"expire; {task} carries on."
                )
            return (
                f"{text}: the kernel arms a timeout, an entry in the sleeping queue for "
                f"{_t(record['deadline'])}; {task} carries on."
            )
        if trap == "unset_timeout":
            return f"{text}: its timeout block ends, and the deadline is withdrawn; it carries on."
        if trap == "io_release":
            return f"{text}: the socket is about to be closed, so the kernel forgets it."
        return f"{text}: a non-blocking trap, answered at once with {answer}; {task} carries on."

    def _parked(self, task: str, park: Record) -> str:
        to = park["to"]
        if to == "ready":
            text = "it goes to the back of the ready queue, so every other ready task runs first."
        elif to == "sleeping" and park["until"] is None:
            text = "it is parked on the sleeping queue, until a deadline that never comes."
        elif to == "sleeping":
            text = f"it is parked on the sleeping queue until {_t(park['until'])}."
        elif to == "io":
            verb = "read from" if park["for"] == "read" else "write to"
            text = f"it is parked in the I/O wait table, waiting to {verb} {park['fd']}."
        elif to == "join":
            text = f"{park['on']} has not ended, so {task} is parked in its join queue (JOIN)."
        elif to == "future":
            text = f"it waits until {park['on']} is done (its done callback will wake it)."
        else:
            until = _WOKEN_WHEN.get(park["why"], "another task wakes it")
            text = f"it is parked in the wait queue of {park['on']} ({park['why']}) until {until}."
        if park.get("timeout") is not None:
            text += f" Its timeout, {_t(park['timeout'])}, is also in the sleeping queue."
        elif "timeout" in park:
            text += " Its timeout has an infinite deadline: it never expires."
        return text

    def _bad_yield(self, index: int, record: Record) -> str:
        task = record["task"]
        after = self._next(index, "park", task=task)
        if after is not None:
            self._fold(after)
        error = record["exc"].partition("(")[0]
        return (
            f"{task} yields {record['value']}, which is not a trap, so the kernel cannot act on "
            f"it: it puts {task} at the back of the ready queue, as sleep(0) would, with a "
            f"{error} to throw into it when its turn comes (at the back, so that a task doing "
            "this in a loop still lets the others run)."
        )

    def _cancelled(self, cancel: Record, wake: Record | None, by: str) -> str:
        """A cancel, and the wake-up that moved its blocked target to the ready queue."""
        target, exc = cancel["task"], cancel["exc"]
        if wake is not None:
            return (
                f"{by} cancels {target} with {exc}. It was blocked ({wake['was']}), so it is "
                "taken out of where it waited and put in the ready queue, to have the "
                "exception thrown in."
            )
        return (
            f"{by} cancels {target} with {exc}; it is not blocked, so the exception waits "
            "for its next blocking trap."
        )

    def _cancel(self, index: int, record: Record) -> str:
        wake = self._next(index, "wake", task=record["task"])
        woken = None if wake is None else self._fold(wake)
        return self._cancelled(record, woken, record["by"] or "The kernel, closing,")

    def _wake(self, index: int, record: Record) -> str | None:
        task, by, on = record["task"], record["by"], record["on"]
        reason = record["reason"]
        if by is not None and reason in ("join", "other") and self._ends_next(index, by):
            self.joiners.append(record)  # told with the end of ``by``
            return None
        if reason == "future":
            return f"{task} is woken: {on} is done, so its done callback puts the task back."
        if reason == "thread" and record["was"] == "THREAD":
            return (
                f"Phase 1 runs what other threads handed over: the worker thread of {on} is "
                f"done and handed its result over (call_threadsafe), which moves {task} from "
                f"the wait queue of {on} to the ready queue."
            )
        if reason == "thread":
            return (
                f"Phase 1 runs what other threads handed over: work handed over with "
                f"call_threadsafe wakes {task} ({record['was']})."
            )
        if reason == "deadlock":  # (told with the deadlock, unless that was left out)
            return (
                f"The deadlock detector takes {task} out of {self._wait_queue(record)} and puts "
                "it in the ready queue, to have a Deadlock thrown in."
            )
        if reason == "cancel":
            return self._cancelled({**record, "exc": "a cancellation"}, record, by or "Someone")
        means = _WAKE_MEANS.get(record["was"], "").format(on=on)
        return (
            f"{by or 'The kernel'} wakes {task}{': ' + means if means else ''}, so {task} "
            f"leaves the wait queue of {on} ({record['was']}) for the ready queue."
        )

    def _ends_next(self, index: int, task: str) -> bool:
        """Is this wake-up part of ``task``'s end? (A task's end wakes its joiners and runs
        its exit callbacks -- a task group's, say -- before the kernel records the exit.)"""
        for later in range(index + 1, len(self.records)):
            record = self.records[later]
            if record["event"] not in ("wake", "cancel", "call_soon", "call_at"):
                return bool(record["event"] == "exit" and record["task"] == task)
        return False

    def _exit(self, index: int, record: Record) -> str:
        task = record["task"]
        joiners = [w for w in self.joiners if w["by"] == task]
        self.joiners = [w for w in self.joiners if w["by"] != task]
        self._folded = [*self._folded, *joiners]
        if record["cancelled"]:
            text = f"{task} ends, cancelled: {record['exc']} propagated out of its coroutine."
        elif "exc" in record:
            text = f"{task} raises {record['exc']}, which ends it: the task holds the exception."
        else:
            result = record["result"]
            text = (
                f"{task} returns {result}: its coroutine raised StopIteration({result}), and "
                "the task is over."
            )
        if joiners:
            waiting = [
                f"{w['task']}, waiting in join()"
                if w["reason"] == "join"
                else f"{w['task']}, waiting in the wait queue of {w['on']} ({w['was']})"
                for w in joiners
            ]
            text += f" Its end wakes {_names(waiting)}: back to the ready queue."
        if task == self.main:
            text += " It is the main task, so kernel.run() stops turning the loop"
            text += " and raises its exception." if "exc" in record else f" and returns {result}."
        return text

    # -- the script's notes ------------------------------------------------------------------------

    def _output(self, index: int, record: Record) -> str:
        who = f"{record['coro']}()" if record.get("coro") else record["by"] or "The program"
        return f"{who} prints {record['text']!r}."

    def _close(self, index: int, record: Record) -> str | None:
        if index == len(self.records) - 1:
            return None
        return (
            "The program is over; closing the kernel cancels every task still alive, so that "
            "its cleanup code runs."
        )

"""The pytest plugin, seen from outside: a pytest session in a temporary folder."""

import pytest


def test_async_tests_run_under_the_kernel_on_a_virtual_clock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        import kernel

        async def test_virtual(virtual_clock):
            await kernel.sleep(3600)
            assert virtual_clock.now() == 3600.0

        async def test_fresh_clock_each_test():
            assert await kernel.clock() == 0.0

        @pytest.mark.realtime
        async def test_real_time():
            assert not isinstance(kernel.current_kernel()._clock, kernel.VirtualClock)

        def test_plain_functions_are_left_alone():
            assert kernel.current_kernel() is None

        async def test_failures_are_reported():
            await kernel.sleep(1)
            raise AssertionError("reported as a failure")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["*AssertionError: reported as a failure*"])


def test_realtime_and_virtual_clock_together_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.realtime
        async def test_confused(virtual_clock):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*marked realtime but asks for the virtual_clock fixture*"])


def test_the_virtual_clock_is_the_kernels_however_the_test_asked_for_it(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest
        import kernel

        @pytest.fixture
        def clock(virtual_clock):
            return virtual_clock

        async def test_through_another_fixture(clock):
            await kernel.sleep(10)
            assert clock.now() == 10.0

        @pytest.mark.usefixtures("virtual_clock")
        async def test_through_usefixtures(request):
            await kernel.sleep(10)
            assert request.getfixturevalue("virtual_clock").now() == 10.0

        @pytest.mark.realtime
        async def test_realtime_through_another_fixture(clock):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*marked realtime but asks for the virtual_clock fixture*"])


def test_async_fixtures_run_in_the_tests_kernel(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        import kernel

        log = []

        @pytest.fixture
        async def server(virtual_clock):
            await kernel.sleep(5)  # on the test's own clock
            log.append(("server up", virtual_clock.now()))
            yield "server"
            await kernel.sleep(1)  # teardown may await too
            log.append(("server down", virtual_clock.now()))

        @pytest.fixture
        async def client(server):
            log.append(("client of", server))
            return "client"

        @pytest.fixture
        def plain():
            return "plain"

        async def test_uses_both(client, server, plain):
            assert (client, server, plain) == ("client", "server", "plain")
            assert (await kernel.current_task()).name == "test_uses_both"
            log.append(("test", await kernel.clock()))

        async def test_failure_still_tears_down(server):
            raise AssertionError("the test failed")

        def test_log():
            assert log == [
                ("server up", 5.0), ("client of", "server"), ("test", 5.0),
                ("server down", 6.0),
                ("server up", 5.0), ("server down", 6.0),
            ]

        class TestInAClass:
            @pytest.fixture
            async def own(self):
                return type(self).__name__

            async def test_method_fixture(self, own):
                assert own == "TestInAClass"
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*AssertionError: the test failed*"])


def test_async_fixture_mistakes_are_explained(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture(scope="module")
        async def shared():
            return 1

        @pytest.fixture
        async def value():
            return 1

        @pytest.fixture
        async def empty():
            if False:
                yield

        @pytest.fixture
        async def twice():
            yield 1
            yield 2

        async def test_module_scoped(shared):
            pass

        def test_sync_test(value):
            pass

        async def test_empty(empty):
            pass

        async def test_twice(twice):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*async fixture 'shared' has scope 'module'*make it function-scoped*",
            "*test_sync_test is not async, but uses the async fixture 'value'*",
            "*async fixture 'empty' did not yield a value*",
            "*async fixture 'twice' yielded more than once*",
        ]
    )


def test_async_fixtures_the_test_does_not_take_are_set_up_too(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        import kernel

        EVENTS = []

        @pytest.fixture
        async def resource():
            EVENTS.append("resource")

        class TestConnected:
            @pytest.fixture(autouse=True)
            async def connected(self):
                await kernel.sleep(1)
                EVENTS.append("set up")
                yield
                EVENTS.append("torn down")

            async def test_autouse(self, virtual_clock):
                assert EVENTS[-1] == "set up" and virtual_clock.now() == 1.0

            @pytest.mark.usefixtures("resource")
            async def test_usefixtures(self):
                assert EVENTS[-2:] == ["set up", "resource"]

            def test_sync(self):
                pass

        def test_log():
            assert EVENTS == ["set up", "torn down", "set up", "resource", "torn down"]
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        ["*test_sync is not async, but uses the async fixture 'connected' (as an argument, auto*"]
    )


def test_a_sync_fixture_cannot_take_an_async_ones_value(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        async def resource():
            return 1

        @pytest.fixture
        def doubled(resource):
            return resource * 2

        async def test_doubled(doubled):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*fixture 'doubled' is not async, but uses the async fixture 'resource'*make 'doubled'*"]
    )


def test_an_overridden_virtual_clock_can_wait_for_a_thread(pytester: pytest.Pytester) -> None:
    # The recipe in getting-started.md for a test whose task waits on a worker thread.
    pytester.makepyfile(
        """
        import threading
        import time
        import pytest
        import kernel

        @pytest.fixture
        def virtual_clock():
            return kernel.VirtualClock(autojump_threshold=5)

        async def test_waits_for_the_thread(virtual_clock):
            await kernel.timeout_after(1, kernel.run_in_thread, time.sleep, 0.05)
            assert virtual_clock.now() == 0.0

        async def test_the_default_clock_jumps():
            released = threading.Event()  # the job ends only once the timeout has come
            with pytest.raises(kernel.TaskTimeout):
                await kernel.timeout_after(1, kernel.run_in_thread, released.wait)
            released.set()
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)

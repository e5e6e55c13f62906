import kernel


async def test_sleep_is_virtual(virtual_clock: kernel.VirtualClock) -> None:
    await kernel.sleep(3600)
    assert virtual_clock.now() == 3600.0
    assert await kernel.clock() == 3600.0
